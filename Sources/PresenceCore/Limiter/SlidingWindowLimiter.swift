import Foundation
import Metrics
import Synchronization

/// An exact sliding-window rate limiter shared by every worker: at any instant at most `limit` accepted requests
/// in the preceding `window`, per subject. The logs live in a ``RateLimitStorage`` (Redis: one Lua script, one round
/// trip per check, on Redis's clock).
public struct SlidingWindowLimiter: Sendable {
    /// The outcome of one check.
    public struct Decision: Sendable, Equatable {
        /// Whether the request may proceed (it has been counted).
        public var allowed: Bool
        /// Requests still allowed in the current window.
        public var remaining: Int
        /// Milliseconds until the oldest counted request leaves the window (0 when none is counted).
        public var resetMilliseconds: Int
        /// The limit.
        public var limit: Int
        /// The limit's name and window in whole seconds, for the `RateLimit` headers of an answer.
        public var name: String = ""
        public var windowSeconds: Int64 = 0

        /// Whole seconds until a slot frees up, at least 1: the `Retry-After` of a rejection.
        public var retryAfterSeconds: Int { max(1, (resetMilliseconds + 999) / 1000) }
        /// Seconds until the oldest counted request leaves the window, rounded up (0 when none).
        public var resetSeconds: Int { (resetMilliseconds + 999) / 1000 }
        /// The `RateLimit` header value, e.g. `"ai";r=4;t=60`.
        public var header: String { "\"\(name)\";r=\(remaining);t=\(resetSeconds)" }
        /// The `RateLimit-Policy` header value, e.g. `"ai";q=5;w=60`.
        public var policyHeader: String { "\"\(name)\";q=\(limit);w=\(windowSeconds)" }
    }

    /// Name of the limit (`ai`, `messages`, `search`): part of the key and of the `RateLimit` headers.
    public let name: String
    public let limit: Int
    public let window: Duration
    let storage: any RateLimitStorage
    let rejections: Counter

    public init(name: String, limit: Int, window: Duration, storage: any RateLimitStorage) {
        self.name = name
        self.limit = limit
        self.window = window
        self.storage = storage
        self.rejections = Counter(label: "rate_limit_rejections_total", dimensions: [("limit", name)])
    }

    /// Checks and, when allowed, records one request of `subject`, or `cost` requests at once (all or none).
    public func check(_ subject: String, cost: Int = 1) async throws -> Decision {
        let state = try await storage.evaluate(limit: name, subject: subject, limit: limit, window: window, cost: cost, peek: false)
        return fusedDecision(allowed: state.allowed, remaining: state.remaining, resetMilliseconds: state.resetMilliseconds)
    }

    /// A check's outcome as a ``Decision``, a rejection counted: ``check(_:cost:)``'s, or one a storage made itself in
    /// the same step as other work (a script that checks the limit first).
    public func fusedDecision(allowed: Bool, remaining: Int, resetMilliseconds: Int) -> Decision {
        if !allowed {
            rejections.increment()
            ProcessActivity.rateLimitRejections.add(1, ordering: .relaxed)
        }
        return decision(allowed: allowed, remaining: remaining, resetMilliseconds: resetMilliseconds)
    }

    /// The current state for `subject` without recording anything.
    public func peek(_ subject: String) async throws -> Decision {
        let state = try await storage.evaluate(limit: name, subject: subject, limit: limit, window: window, cost: 1, peek: true)
        return decision(allowed: state.allowed, remaining: state.remaining, resetMilliseconds: state.resetMilliseconds)
    }

    private func decision(allowed: Bool, remaining: Int, resetMilliseconds: Int) -> Decision {
        Decision(
            allowed: allowed, remaining: max(0, remaining), resetMilliseconds: max(0, resetMilliseconds), limit: limit,
            name: name, windowSeconds: window.components.seconds
        )
    }

    /// The `RateLimit-Policy` header value, e.g. `"ai";q=5;w=60`.
    public var policyHeader: String {
        "\"\(name)\";q=\(limit);w=\(window.components.seconds)"
    }

    /// The `RateLimit` header value for a decision, e.g. `"ai";r=4;t=60`.
    public func header(for decision: Decision) -> String {
        decision.header
    }
}
