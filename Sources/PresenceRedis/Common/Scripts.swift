import PresenceCore
import Foundation
import Redis
import Synchronization

/// The Lua scripts of the domain, loaded once from the target's `Scripts/` resources. ``verify()`` runs at start-up,
/// so a missing or unreadable file stops the server before it serves anything instead of on first use.
///
/// A line `--#include <name>` in a script is replaced by `Scripts/lib/<name>.lua` when the script is loaded: functions
/// several scripts share are written once (Redis runs, and hashes, the composed text).
public enum Scripts {
    static let presenceJoin = load("presence_join")
    static let presenceRefresh = load("presence_refresh")
    static let presenceLeave = load("presence_leave")
    static let presenceSweep = load("presence_sweep")
    static let presenceList = load("presence_list")
    static let presenceCount = load("presence_count")
    static let presencePresent = load("presence_present")
    static let roomClock = load("room_clock")
    static let presenceRegister = load("presence_register")
    static let presenceDue = load("presence_due")
    static let presenceSettle = load("presence_settle")
    static let rateLimitSliding = load("ratelimit_sliding")
    static let roomCreate = load("room_create")
    static let roomGet = load("room_get")
    static let roomDelete = load("room_delete")
    static let roomLeavePrivate = load("room_leave_private")
    static let userRegister = load("user_register")
    static let userTouch = load("user_touch")
    static let userSwitch = load("user_switch")
    /// Holds a copy of `ratelimit_sliding.lua` as a local function (see the script and ``limiterCopy(in:)``).
    static let userSwitchLimited = load("user_switch_limited")
    static let historyAppend = load("history_append")
    static let supportOpen = load("support_open")
    static let supportMetadata = load("support_metadata")
    static let supportClose = load("support_close")
    static let supportReopen = load("support_reopen")
    public static let expiringTouch = load("expiring_touch")
    public static let expiringMembers = load("expiring_members")
    static let socketDetach = load("socket_detach")
    static let channelRoomOpen = load("channel_room_open")
    static let workerAnnounce = load("worker_announce")
    static let workerList = load("worker_list")
    static let occupancyTouch = load("occupancy_touch")
    static let occupancyRemove = load("occupancy_remove")
    static let occupancyRefresh = load("occupancy_refresh")
    static let socketRefresh = load("socket_refresh")
    static let channelIndexTouch = load("channel_index_touch")
    static let occupancySettle = load("occupancy_settle")
    static let expiringLapsed = load("expiring_lapsed")
    static let expiringForget = load("expiring_forget")
    static let webhookLease = load("webhook_lease")
    static let webhookRelease = load("webhook_release")
    static let webhookAck = load("webhook_ack")
    static let webhookBacklog = load("webhook_backlog")
    static let webhookAppend = load("webhook_append")

    /// Every script, in declaration order.
    public static var all: [RedisScript] {
        [presenceJoin, presenceRefresh, presenceLeave, presenceSweep, presenceList, presenceCount, presencePresent, roomClock, presenceRegister, presenceDue, presenceSettle,
         rateLimitSliding, roomCreate, roomGet, roomDelete, roomLeavePrivate, userRegister, userTouch, userSwitch, userSwitchLimited,
         historyAppend, supportOpen, supportMetadata, supportClose, supportReopen, expiringTouch, expiringMembers,
         socketDetach, channelRoomOpen, workerAnnounce, workerList, occupancyTouch, occupancyRemove, occupancyRefresh, socketRefresh, channelIndexTouch, occupancySettle,
         expiringLapsed, expiringForget, webhookLease, webhookRelease, webhookAck, webhookBacklog, webhookAppend]
    }

    /// A script that could not be loaded, with the reason.
    public struct LoadError: Error, CustomStringConvertible {
        public let failures: [String]
        public var description: String { "Lua scripts missing or unreadable: " + failures.joined(separator: "; ") }
    }

    /// The copy of `ratelimit_sliding.lua` inside `source` (`user_switch_limited.lua`): the text between
    /// `local function ratelimit(KEYS, ARGV)` and `end -- of the copy of ratelimit_sliding.lua`.
    static func limiterCopy(in source: String) -> String? {
        guard let start = source.range(of: "local function ratelimit(KEYS, ARGV)\n"),
              let end = source.range(of: "\nend -- of the copy of ratelimit_sliding.lua", range: start.upperBound..<source.endIndex) else {
            return nil
        }
        return String(source[start.upperBound..<end.lowerBound])
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
