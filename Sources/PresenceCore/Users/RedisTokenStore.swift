import Redis

/// ``TokenStorage`` in Redis: `token:{<sha256>}` → username with a TTL (`GETEX` slides it); a revocation is
/// announced on ``RedisKeys/tokensRevoked``.
public struct RedisTokenStore: TokenStorage {
    let redis: RedisClient

    public init(redis: RedisClient) {
        self.redis = redis
    }

    public func save(digest: String, user: String, ttl: Duration) async throws {
        try await redis.send(RedisCommand("SET", RedisKeys.token(digest), user, "EX", String(ttl.components.seconds)))
    }

    public func user(digest: String, ttl: Duration) async throws -> String? {
        try await redis.send(RedisCommand("GETEX", RedisKeys.token(digest), "EX", String(ttl.components.seconds))).string
    }

    public func revoke(digest: String) async throws {
        let replies = try await redis.pipeline([
            RedisCommand("DEL", RedisKeys.token(digest)),
            redis.publishCommand(digest, to: RedisKeys.tokensRevoked),
        ])
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
    }
}
