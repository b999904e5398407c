import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Finds presences that expired and has their departure announced, exactly once, whichever worker gets there.
///
/// Every worker runs one. Each pass leases the rooms due for a check from the work list (``ExpiryStorage``; in Redis
/// the bucketed `presence:rooms:{…}` sorted sets, on Redis's clock), claims the expired members of each (only one
/// worker ever gets a given expiry), hands them to `onExpired`, and only then settles the rooms (due again at their
/// next expiry). A worker that dies mid-pass leaves its rooms leased: another worker takes them when the lease ends.
/// No keyspace notifications: they lag badly once Redis holds many keys with a TTL.
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

    /// `batchSize` bounds the rooms taken from each bucket per pass.
    public init(storage: any ExpiryStorage, interval: Duration, batchSize: Int = 200, logger: Logger, onExpired: @escaping @Sendable (Expired) async -> Void) {
        self.storage = storage
        self.interval = interval
        self.batchSize = batchSize
        self.logger = logger
        self.onExpired = onExpired
    }

    /// How long a pass holds the rooms it took: long enough to claim and announce them, short enough that a worker
    /// that died holding them delays their announcements only briefly.
    var lease: Duration { max(.seconds(5), interval * 2) }

    /// Sweeps every `interval` until graceful shutdown, which ends the wait at once.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    // A full bucket means more may be due: go again at once.
                    while try await sweepOnce() >= batchSize {}
                } catch {
                    logger.debug("Sweep failed", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: interval)
            }
        }
    }

    /// One pass; returns the most rooms taken from one bucket (``batchSize`` or more: go again).
    @discardableResult
    public func sweepOnce() async throws -> Int {
        Counter(label: "sweeper_runs_total").increment()
        let due = try await storage.due(limit: batchSize, lease: lease)
        guard !due.isEmpty else { return 0 }
        let claims = try await storage.claimExpired(rooms: due.map(\.room))
        var settled: [(room: DueRoom, claim: ExpiredClaim)] = []
        for (room, claim) in zip(due, claims) {
            // A room whose claim failed is not settled: its lease runs out and it is taken again.
            guard let claim else {
                logger.warning("Sweep failed for a room", metadata: ["room": "\(room.room)"])
                continue
            }
            if !claim.users.isEmpty {
                logger.debug("Presence expired", metadata: ["room": "\(room.room)", "users": "\(claim.users)"])
                Counter(label: "presence_leaves_announced_total").increment(by: claim.users.count)
                ProcessActivity.leavesAnnounced.add(claim.users.count, ordering: .relaxed)
                await onExpired(Expired(room: room.room, users: claim.users, userCount: claim.userCount, meta: claim.meta))
            }
            settled.append((room, claim))
        }
        try await storage.settle(settled, recheck: interval)
        var perBucket: [Int: Int] = [:]
        for room in due { perBucket[room.bucket, default: 0] += 1 }
        return perBucket.values.max() ?? 0
    }
}
