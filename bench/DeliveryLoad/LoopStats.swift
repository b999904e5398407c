/// What the sockets of one event loop have seen. It lives on that loop (held in a `NIOLoopBound`), so its sockets
/// count without locks; `snapshot()` runs on the loop and the main task adds the loops' snapshots up.
final class LoopStats {
    /// A copy of the counters, summed over loops by `+`.
    struct Snapshot: Sendable {
        var established = 0
        var subscribed = 0
        var closed = 0
        var errors = 0
        /// Event frames, duplicates included.
        var received = 0
        /// Distinct (socket, seq) pairs received.
        var distinct = 0
        var duplicates = 0
        /// Event frames whose seq is not below --events-per-channel.
        var unexpected = 0
        /// Wall-clock ns of the last event frame (0 for none).
        var lastFrameNanos: Int64 = 0
        var latency = LatencyHistogram()

        static func + (a: Snapshot, b: Snapshot) -> Snapshot {
            var sum = a
            sum.established += b.established
            sum.subscribed += b.subscribed
            sum.closed += b.closed
            sum.errors += b.errors
            sum.received += b.received
            sum.distinct += b.distinct
            sum.duplicates += b.duplicates
            sum.unexpected += b.unexpected
            sum.lastFrameNanos = max(a.lastFrameNanos, b.lastFrameNanos)
            sum.latency.merge(b.latency)
            return sum
        }
    }

    var counts = Snapshot()
    /// Error messages printed so far (the first few go to stderr, not all).
    var reported = 0

    /// A copy of the counters (call on the loop).
    func snapshot() -> Snapshot { counts }

    /// Prints one of the first ten problems of this loop on stderr.
    func report(_ message: @autoclosure () -> String) {
        counts.errors += 1
        guard reported < 10 else { return }
        reported += 1
        Console.error(message())
    }
}
