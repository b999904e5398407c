import PresenceCore
import Foundation
import Redis

/// Sliding-window logs in Redis sorted sets (`ratelimit:<name>:{<subject>}`), one Lua script per check
/// (`ratelimit_sliding.lua`, one round trip, on Redis's clock).
public struct RedisRateLimitStorage: RateLimitStorage {
    let redis: RedisClient

    public init(redis: RedisClient) {
        self.redis = redis
    }

    public func evaluate(limit name: String, subject: String, limit: Int, window: Duration, cost: Int, peek: Bool) async throws
        -> (allowed: Bool, remaining: Int, resetMilliseconds: Int) {
        let reply = try await redis.run(
            Scripts.rateLimitSliding,
            keys: [RedisKeys.rateLimit(name, subject)],
            arguments: [String(limit), String(window.milliseconds), RandomID.make(), peek ? "peek" : "check", String(max(1, cost))]
        )
        return try Self.state(reply, count: 4, script: "rate limiter")
    }

    /// The limiter's `{allowed, remaining, reset ms, limit, ...}` at the head of a script's reply of `count` values
    /// (`ratelimit_sliding.lua`, or a script that checks the limit first, as `user_switch_limited.lua`).
    static func state(_ reply: RESPValue, count: Int, script: String) throws -> (allowed: Bool, remaining: Int, resetMilliseconds: Int) {
        if let message = reply.errorMessage { throw RedisError.server(message) }
        guard let values = reply.array, values.count == count,
              let allowed = values[0].int, let remaining = values[1].int, let reset = values[2].int else {
            throw RedisError.protocolError("unexpected \(script) reply \(reply)")
        }
        return (allowed == 1, max(0, remaining), max(0, reset))
    }
}
