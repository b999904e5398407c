import NIOCore

/// Capped exponential backoff with jitter, for reconnect attempts.
struct Backoff {
    let base: TimeAmount
    let cap: TimeAmount
    private(set) var attempt = 0

    init(base: TimeAmount, cap: TimeAmount) {
        self.base = base
        self.cap = max(base, cap)
    }

    /// The delay before the next attempt: base × 2^attempt, at most `cap`, minus up to 20 % jitter
    /// so that many workers do not reconnect in lockstep.
    mutating func next() -> TimeAmount {
        let exponent = min(attempt, 20)
        attempt += 1
        let raw = min(base.nanoseconds << exponent, cap.nanoseconds)
        let jitter = Int64.random(in: 0...(raw / 5))
        return .nanoseconds(raw - jitter)
    }

    mutating func reset() { attempt = 0 }
}
