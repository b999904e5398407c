import Synchronization

/// Counts of what this process did, for its announcement to the operator console: totals since start, which the
/// announcer turns into per-interval figures. (Prometheus has the same counts by label; these are the plain sums.)
public enum ProcessActivity {
    /// Departures this process's sweeper announced (expired presence).
    public static let leavesAnnounced = Atomic<Int>(0)
    /// Requests any rate limit refused in this process.
    public static let rateLimitRejections = Atomic<Int>(0)
}
