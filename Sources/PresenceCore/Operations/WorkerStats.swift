import Foundation
import Synchronization

/// What this worker served, sampled every few seconds for the operator console: requests per second and p99 latency
/// (from a log-scale histogram of the interval's requests), and the sweeper's leaves and the limiters' rejections in
/// the interval. Keeps the last ``historyLength`` samples, which the console plots.
package final class WorkerStats: Sendable {
    package init() {}

    /// One sampling interval.
    package struct Sample: Sendable, Equatable {
        /// End of the interval, ms since the epoch.
        package var time: Int64
        package var requestsPerSecond: Double
        package var p99Milliseconds: Double
        package var leaves: Int
        package var rejections: Int
    }

    /// Samples kept: ten minutes at the announcer's five seconds.
    static let historyLength = 120
    /// Histogram bucket `i` holds durations up to `base × ratio^i` ms: 0.05 ms to about a minute in 64 buckets, so a
    /// p99 is reported within 25 %.
    static let bucketCount = 64
    static let base = 0.05
    static let ratio = 1.25

    private struct State {
        var count = 0
        var buckets = [Int](repeating: 0, count: WorkerStats.bucketCount)
        var history: [Sample] = []
        var lastSample = ContinuousClock.now
        var lastLeaves = 0
        var lastRejections = 0
    }

    private let state = Mutex(State())

    /// Records one request that took `nanoseconds`.
    package func record(nanoseconds: Int64) {
        let index = Self.bucket(milliseconds: Double(nanoseconds) / 1e6)
        state.withLock {
            $0.count += 1
            $0.buckets[index] += 1
        }
    }

    /// Closes the current interval: returns its sample (also kept in ``history``) and starts the next.
    package func sample(leavesTotal: Int = ProcessActivity.leavesAnnounced.load(ordering: .relaxed),
                rejectionsTotal: Int = ProcessActivity.rateLimitRejections.load(ordering: .relaxed),
                now: ContinuousClock.Instant = .now, wallClock: Date = Date()) -> Sample {
        state.withLock { state in
            let elapsed = now - state.lastSample
            let seconds = max(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, 0.001)
            let sample = Sample(
                time: Int64(wallClock.timeIntervalSince1970 * 1000),
                requestsPerSecond: Double(state.count) / seconds,
                p99Milliseconds: Self.percentile(0.99, of: state.buckets, count: state.count),
                leaves: max(0, leavesTotal - state.lastLeaves),
                rejections: max(0, rejectionsTotal - state.lastRejections)
            )
            state.history.append(sample)
            if state.history.count > Self.historyLength { state.history.removeFirst(state.history.count - Self.historyLength) }
            state.count = 0
            for index in state.buckets.indices { state.buckets[index] = 0 }
            state.lastSample = now
            state.lastLeaves = leavesTotal
            state.lastRejections = rejectionsTotal
            return sample
        }
    }

    /// The samples kept, oldest first.
    package var history: [Sample] { state.withLock { $0.history } }

    static func bucket(milliseconds: Double) -> Int {
        guard milliseconds > base else { return 0 }
        let index = Int((log(milliseconds / base) / log(ratio)).rounded(.up))
        return min(max(index, 0), bucketCount - 1)
    }

    /// The upper bound of the bucket holding the `quantile` of `count` recorded durations (0 when none).
    static func percentile(_ quantile: Double, of buckets: [Int], count: Int) -> Double {
        guard count > 0 else { return 0 }
        let rank = Int((quantile * Double(count)).rounded(.up))
        var seen = 0
        for (index, n) in buckets.enumerated() {
            seen += n
            if seen >= rank { return base * pow(ratio, Double(index)) }
        }
        return base * pow(ratio, Double(buckets.count - 1))
    }
}
