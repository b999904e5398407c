import PresenceCore
import Foundation
import Redis
import Synchronization

/// The Lua scripts of the domain: one case per file `Scripts/<raw value>.lua` (the test "every Lua script is loaded and
/// checked at start-up" compares the cases with the folder), all loaded at once from the target's resources.
/// ``verify()`` runs at start-up, so a missing or unreadable file stops the server before it serves anything instead of
/// on first use. A case stands for its script wherever one is run (``RedisClient/run(_:keys:arguments:)``,
/// ``RedisScriptCall/init(_:keys:arguments:)``); ``script`` is the loaded ``RedisScript``.
///
/// A line `--#include <name>` in a script is replaced by `Scripts/lib/<name>.lua` when the script is loaded: functions
/// several scripts share are written once (Redis runs, and hashes, the composed text). `lib/clock.lua` (`redis_now()`,
/// Redis's clock in ms) is one; a library that uses another is included after it.
public enum Scripts: String, CaseIterable, Sendable {
    case presenceJoin = "presence_join"
    case presenceRefresh = "presence_refresh"
    case presenceLeave = "presence_leave"
    case presenceSweep = "presence_sweep"
    case presenceList = "presence_list"
    case presenceCount = "presence_count"
    case presencePresent = "presence_present"
    case roomClock = "room_clock"
    case presenceRegister = "presence_register"
    case presenceDue = "presence_due"
    case presenceSettle = "presence_settle"
    case rateLimitSliding = "ratelimit_sliding"
    case roomCreate = "room_create"
    case roomGet = "room_get"
    case roomDelete = "room_delete"
    case roomLeavePrivate = "room_leave_private"
    case userRegister = "user_register"
    case userTouch = "user_touch"
    case userSwitch = "user_switch"
    case userSwitchLimited = "user_switch_limited"
    case historyAppend = "history_append"
    case supportOpen = "support_open"
    case supportMetadata = "support_metadata"
    case supportClose = "support_close"
    case supportReopen = "support_reopen"
    case supportAttendance = "support_attendance"
    case supportWaiting = "support_waiting"
    case leaseIndex = "lease_index"
    case unseenPost = "unseen_post"
    case unseenWatch = "unseen_watch"
    case unseenClaim = "unseen_claim"
    case unseenSend = "unseen_send"
    case expiringTouch = "expiring_touch"
    case expiringMembers = "expiring_members"
    case socketDetach = "socket_detach"
    case channelRoomOpen = "channel_room_open"
    case workerAnnounce = "worker_announce"
    case workerList = "worker_list"
    case occupancyTouch = "occupancy_touch"
    case occupancyRemove = "occupancy_remove"
    case occupancyRefresh = "occupancy_refresh"
    case socketRefresh = "socket_refresh"
    case channelIndexTouch = "channel_index_touch"
    case occupancySettle = "occupancy_settle"
    case expiringLapsed = "expiring_lapsed"
    case expiringForget = "expiring_forget"
    case webhookLease = "webhook_lease"
    case webhookRelease = "webhook_release"
    case webhookAck = "webhook_ack"
    case webhookBacklog = "webhook_backlog"
    case webhookAppend = "webhook_append"
    case recoveryPublish = "recovery_publish"
    case recoveryRead = "recovery_read"

    /// The loaded script.
    public var script: RedisScript { Self.loaded[self]! }

    /// Every script, in the order of the cases.
    public static var all: [RedisScript] { allCases.map(\.script) }

    private static let loaded: [Scripts: RedisScript] = Dictionary(uniqueKeysWithValues: allCases.map { ($0, load($0.rawValue)) })

    /// A script that could not be loaded, with the reason.
    public struct LoadError: Error, CustomStringConvertible {
        public let failures: [String]
        public var description: String { "Lua scripts missing or unreadable: " + failures.joined(separator: "; ") }
    }

    /// `source` with each `--#include <name>` line replaced by `Scripts/lib/<name>.lua`.
    static func compose(_ source: String) throws -> String {
        guard source.contains("--#include ") else { return source }
        var lines: [Substring] = []
        for line in source.split(separator: "\n", omittingEmptySubsequences: false) {
            guard line.hasPrefix("--#include ") else {
                lines.append(line)
                continue
            }
            let name = line.dropFirst("--#include ".count).trimmingCharacters(in: .whitespaces)
            let library = try RedisScript(resource: name, in: .module, subdirectory: "Scripts/lib")
            var included = library.source.split(separator: "\n", omittingEmptySubsequences: false)
            if included.last?.isEmpty == true { included.removeLast() }
            lines.append(contentsOf: included)
        }
        return lines.joined(separator: "\n")
    }

    /// Loads every script now; throws ``LoadError`` naming each one that is missing or unreadable.
    public static func verify() throws {
        _ = all
        let failed = failures.withLock { $0 }
        if !failed.isEmpty { throw LoadError(failures: failed) }
    }

    private static let failures = Mutex<[String]>([])

    private static func load(_ name: String) -> RedisScript {
        do {
            let script = try RedisScript(resource: name, in: .module, subdirectory: "Scripts")
            return RedisScript(name: script.name, source: try compose(script.source))
        } catch {
            failures.withLock { $0.append("\(name).lua: \(error)") }
            // Never sent: verify() stops start-up first. Should it be, Redis answers with this error.
            return RedisScript(name: name, source: "return redis.error_reply('MISSINGSCRIPT \(name).lua')")
        }
    }
}


extension RedisClient {
    /// Runs `script` (see ``RedisClient/run(_:keys:arguments:)``).
    @discardableResult
    public func run(_ script: Scripts, keys: [String] = [], arguments: [String] = []) async throws -> RESPValue {
        try await run(script.script, keys: keys, arguments: arguments)
    }
}

extension RedisScriptCall {
    public init(_ script: Scripts, keys: [String], arguments: [String] = []) {
        self.init(script.script, keys: keys, arguments: arguments)
    }
}
