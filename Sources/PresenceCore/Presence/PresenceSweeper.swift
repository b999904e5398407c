import Logging
import Metrics
import ServiceLifecycle

/// Finds presences that expired and has their departure announced, exactly once, whichever worker gets there.
///
/// Every worker runs one. Each pass reads due entries from the work list (``ExpiryStorage``; in Redis
/// `presence:expiries`, scored by expiry, on Redis's clock), claims the expired members of each room concerned (only
/// one worker ever gets a given expiry), hands them to `onExpired`, then drops the handled entries from the work list
/// unless a heartbeat pushed them into the future meanwhile. No keyspace notifications: they lag
/// badly once Redis holds many keys with a TTL.
public struct PresenceSweeper: Service {
    /// Members of one room whose presence expired, claimed by this worker.
    public struct Expired: Sendable {
        public var room: String
        public var users: [String]
        public var userCount: Int
        public var meta: [String: String]
    }

    let storage: any ExpiryStorage
    let interval: Duration
    let batchSize: Int
    let logger: Logger
    let onExpired: @Sendable (Expired) async -> Void

    public init(storage: any ExpiryStorage, interval: Duration, batchSize: Int = 500, logger: Logger, onExpired: @escaping @Sendable (Expired) async -> Void) {
        self.storage = storage
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
        let (now, entries) = try await storage.due(limit: batchSize)
        guard !entries.isEmpty else { return 0 }
        var rooms: [String] = []
        for entry in entries {
            guard let room = Self.room(ofEntry: entry) else { continue }
            if !rooms.contains(room) { rooms.append(room) }
        }
        let claims = try await storage.claimExpired(rooms: rooms)
        for (room, claim) in zip(rooms, claims) {
            guard let claim else {
                logger.warning("Sweep failed for a room", metadata: ["room": "\(room)"])
                continue
            }
            guard !claim.users.isEmpty else { continue }
            logger.debug("Presence expired", metadata: ["room": "\(room)", "users": "\(claim.users)"])
            Counter(label: "presence_leaves_announced_total").increment(by: claim.users.count)
            await onExpired(Expired(room: room, users: claim.users, userCount: claim.userCount, meta: claim.meta))
        }
        try await storage.acknowledge(entries, now: now)
        return entries.count
    }
}
