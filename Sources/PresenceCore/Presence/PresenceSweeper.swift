import Logging
import Metrics
import Redis
import ServiceLifecycle

/// Finds presences that expired and has their departure announced, exactly once, whichever worker gets there.
///
/// Every worker runs one. Each pass reads due entries from `presence:expiries` (scored by expiry, on Redis's
/// clock), runs `presence_sweep.lua` for each room concerned (the script claims expired members with ZREM, so only
/// one worker ever gets a given expiry), hands the claimed members to `onExpired`, then drops the handled entries
/// from the work list unless a heartbeat pushed them into the future meanwhile. No keyspace notifications: they lag
/// badly once Redis holds many keys with a TTL.
public struct PresenceSweeper: Service {
    /// Members of one room whose presence expired, claimed by this worker.
    public struct Expired: Sendable {
        public var room: String
        public var users: [String]
        public var userCount: Int
        public var meta: [String: String]
    }

    let redis: RedisClient
    let interval: Duration
    let batchSize: Int
    let logger: Logger
    let onExpired: @Sendable (Expired) async -> Void

    public init(redis: RedisClient, interval: Duration, batchSize: Int = 500, logger: Logger, onExpired: @escaping @Sendable (Expired) async -> Void) {
        self.redis = redis
        self.interval = interval
        self.batchSize = batchSize
        self.logger = logger
        self.onExpired = onExpired
    }

    /// Sweeps every `interval` until graceful shutdown, which ends the wait at once.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    // A full batch means more may be due: go again at once.
                    while try await sweepOnce() >= batchSize {}
                } catch {
                    logger.debug("Sweep failed", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: interval)
            }
        }
    }

    /// The room of a work-list entry `<roomId>:<user>`. Chat and support room ids have no `:`; a presence channel's
    /// room is `pch:<channel>` and channel names have no `:` either, so the room ends at its first `:` after that
    /// prefix (a user id may contain `:`).
    static func room(ofEntry entry: String) -> String? {
        let start = entry.hasPrefix("pch:") ? entry.index(entry.startIndex, offsetBy: 4) : entry.startIndex
        guard let colon = entry[start...].firstIndex(of: ":") else { return nil }
        return String(entry[..<colon])
    }

    /// One pass; returns how many due entries it handled.
    @discardableResult
    public func sweepOnce() async throws -> Int {
        Counter(label: "sweeper_runs_total").increment()
        let due = try await redis.run(Scripts.expiryDue, keys: [RedisKeys.presenceExpiries], arguments: [String(batchSize)])
        guard let v = due.array, v.count == 2, let now = v[0].int, let entries = v[1].array?.compactMap(\.string),
              !entries.isEmpty else { return 0 }
        var rooms: [String] = []
        for entry in entries {
            guard let room = Self.room(ofEntry: entry) else { continue }
            if !rooms.contains(room) { rooms.append(room) }
        }
        let replies = try await redis.run(rooms.map { room in
            RedisScriptCall(
                Scripts.presenceSweep,
                keys: [RedisKeys.roomMeta(room), RedisKeys.roomMembers(room), RedisKeys.roomJoined(room)],
                arguments: []
            )
        })
        for (room, reply) in zip(rooms, replies) {
            guard let r = reply.array, r.count == 3, let count = r[0].int else {
                logger.warning("Sweep script failed", metadata: ["room": "\(room)", "reply": "\(reply)"])
                continue
            }
            let claimed = (r[1].array ?? []).compactMap(\.string)
            guard !claimed.isEmpty else { continue }
            logger.debug("Presence expired", metadata: ["room": "\(room)", "users": "\(claimed)"])
            Counter(label: "presence_leaves_announced_total").increment(by: claimed.count)
            await onExpired(Expired(room: room, users: claimed, userCount: count, meta: PresenceEngine.hash(r[2])))
        }
        try await redis.run(Scripts.expiryAck, keys: [RedisKeys.presenceExpiries], arguments: [String(now)] + entries)
        return entries.count
    }
}
