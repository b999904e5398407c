/// Latencies in microseconds counted in fixed log-linear buckets: exact below 64 µs, then 32 buckets per power of two
/// (about 3 % wide), up to 60 s (anything longer counts as 60 s). p50/p99 come from the buckets, the maximum is exact;
/// no sample is stored.
struct LatencyHistogram: Sendable {
    /// The largest latency kept apart: 60 s.
    static let limitMicros: Int64 = 60_000_000
    static let bucketCount = index(of: limitMicros) + 1

    private(set) var counts = [UInt64](repeating: 0, count: LatencyHistogram.bucketCount)
    private(set) var count: UInt64 = 0
    private(set) var maxMicros: Int64 = 0

    /// Counts one latency (negative reads as 0).
    mutating func record(micros: Int64) {
        let value = min(max(micros, 0), Self.limitMicros)
        counts[Self.index(of: value)] &+= 1
        count &+= 1
        if value > maxMicros { maxMicros = value }
    }

    /// Adds another histogram's counts to this one.
    mutating func merge(_ other: LatencyHistogram) {
        for i in 0..<counts.count { counts[i] &+= other.counts[i] }
        count &+= other.count
        maxMicros = max(maxMicros, other.maxMicros)
    }

    /// The latency at quantile `q` (0...1) in microseconds: the upper edge of its bucket, at most the maximum seen.
    func quantile(_ q: Double) -> Int64 {
        guard count > 0 else { return 0 }
        let rank = max(1, UInt64((Double(count) * q).rounded(.up)))
        var seen: UInt64 = 0
        for (i, n) in counts.enumerated() {
            seen &+= n
            if seen >= rank { return min(Self.upperEdge(of: i), maxMicros) }
        }
        return maxMicros
    }

    /// The bucket of `value` (≥ 0).
    static func index(of value: Int64) -> Int {
        if value < 64 { return Int(value) }
        let shift = (63 - value.leadingZeroBitCount) - 5
        return 64 + (shift - 1) * 32 + Int(value >> shift) - 32
    }

    /// The largest value bucket `index` holds.
    static func upperEdge(of index: Int) -> Int64 {
        if index < 64 { return Int64(index) }
        let shift = (index - 64) / 32 + 1
        let mantissa = Int64((index - 64) % 32 + 32)
        return ((mantissa + 1) << shift) - 1
    }
}
