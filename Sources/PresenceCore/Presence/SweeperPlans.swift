import Synchronization

/// A worker's memory of when the sweeper plans to look at each room next, as `presence_register.lua` last answered,
/// so that a join can skip registering its room again while that plan already covers it.
///
/// Registering (`ZADD LT now+ttl`) only ever brings a room's check forward. While the planned check is still ahead
/// and no later than the new member's expiry, registering again would change nothing; skipping it saves one Redis
/// command per switch. The worker's clock only decides whether to try: the join script itself refuses (`STALE`) when
/// Redis's clock is within a second of the plan, and the caller then registers as before. So a skipped registration
/// can never race the sweeper's claim of the room.
public final class SweeperPlans: Sendable {
    /// A room's planned check: Redis's time (ms), and the same moment on this worker's monotonic clock, estimated
    /// early (from when the registration was sent).
    struct Plan {
        var check: Int64
        var until: ContinuousClock.Instant
    }

    /// How close to the plan a join stops relying on it.
    static let margin: Duration = .seconds(1)
    private let plans = Mutex<[String: Plan]>([:])
    private let capacity: Int

    /// `capacity`: rooms remembered before the memory starts over.
    public init(capacity: Int = 50_000) {
        self.capacity = capacity
    }

    /// The planned check (Redis ms) to hand the join script for a member entering `room` now with `ttl`, or `nil`
    /// when the room must be registered first.
    package func plannedCheck(room: String, ttl: Duration, now: ContinuousClock.Instant = .now) -> Int64? {
        plans.withLock { plans in
            guard let plan = plans[room] else { return nil }
            guard now + Self.margin < plan.until, plan.until <= now + ttl else {
                if plan.until <= now + Self.margin { plans[room] = nil }
                return nil
            }
            return plan.check
        }
    }

    /// Records a `presence_register.lua` reply (`{check, now}` in Redis ms) for `room`, registered at `sentAt`.
    package func record(room: String, check: Int64, redisNow: Int64, sentAt: ContinuousClock.Instant) {
        let plan = Plan(check: check, until: sentAt + .milliseconds(check - redisNow))
        plans.withLock { plans in
            if plans.count >= capacity, plans[room] == nil { plans.removeAll(keepingCapacity: true) }
            plans[room] = plan
        }
    }

    /// Forgets `room`'s plan (the join found it stale).
    package func forget(_ room: String) {
        _ = plans.withLock { $0.removeValue(forKey: room) }
    }
}
