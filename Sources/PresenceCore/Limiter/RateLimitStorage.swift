/// Where the sliding-window logs of ``SlidingWindowLimiter`` live: one log per (limit, subject), shared by every
/// worker. One call checks and records atomically.
public protocol RateLimitStorage: Sendable {
    /// Drops entries older than `window`, then, unless `peek`, records `cost` requests if they all fit under `limit`
    /// (all or none). Returns whether they fit, how many remain, and the milliseconds until the oldest counted request
    /// leaves the window (0 when none is counted).
    func evaluate(limit name: String, subject: String, limit: Int, window: Duration, cost: Int, peek: Bool) async throws
        -> (allowed: Bool, remaining: Int, resetMilliseconds: Int)
}
