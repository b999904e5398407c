/// The run's result as one JSON line (fields in a fixed order; numbers only).
struct Report {
    var sockets = 0
    var established = 0
    var subscribed = 0
    var connectSeconds = 0.0
    var due = 0
    var totals = LoopStats.Snapshot()
    /// Event frames received from publish-start to drained (what the CPU time is divided by).
    var framesInWindow = 0
    var publishStartNanos: Int64 = 0
    var publish = Publisher.Result()
    var cpuSeconds = 0.0

    /// `lost`: due minus the distinct (socket, seq) pairs received.
    var lost: Int { max(0, due - totals.distinct) }

    var json: String {
        let lastDelivery = totals.lastFrameNanos == 0 ? 0 : Double(max(0, totals.lastFrameNanos - publishStartNanos)) / 1e6
        let fields: [(String, String)] = [
            ("sockets", "\(sockets)"),
            ("established", "\(established)"),
            ("subscribed", "\(subscribed)"),
            ("connect_seconds", Self.fixed(connectSeconds, 3)),
            ("due", "\(due)"),
            ("received", "\(totals.received)"),
            ("distinct", "\(totals.distinct)"),
            ("lost", "\(lost)"),
            ("duplicates", "\(totals.duplicates)"),
            ("unexpected", "\(totals.unexpected)"),
            ("errors", "\(totals.errors)"),
            ("closed", "\(totals.closed)"),
            ("p50_ms", Self.fixed(Double(totals.latency.quantile(0.5)) / 1000, 3)),
            ("p99_ms", Self.fixed(Double(totals.latency.quantile(0.99)) / 1000, 3)),
            ("max_ms", Self.fixed(Double(totals.latency.maxMicros) / 1000, 3)),
            ("last_delivery_ms", Self.fixed(lastDelivery, 3)),
            ("publish_seconds", Self.fixed(publish.seconds, 3)),
            ("events_published", "\(publish.published)"),
            ("publish_failures", "\(publish.failures)"),
            ("generator_cpu_seconds", Self.fixed(cpuSeconds, 3)),
            ("generator_us_per_frame", Self.fixed(framesInWindow > 0 ? cpuSeconds * 1e6 / Double(framesInWindow) : 0, 3)),
        ]
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }

    /// `value` with `digits` decimals.
    static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "0" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = Int64((abs(value) * scale).rounded())
        let whole = scaled / Int64(scale), part = String(scaled % Int64(scale))
        let sign = value < 0 && scaled != 0 ? "-" : ""
        return digits == 0 ? "\(sign)\(whole)"
            : "\(sign)\(whole)." + String(repeating: "0", count: digits - part.count) + part
    }
}
