import PresenceCore
import Redis

/// ``TokenStorage`` in Redis: `token:{<sha256>}` → username with a TTL (`GETEX` slides it); a revocation is
/// announced on ``RedisKeys/tokensRevoked``.
public struct RedisTokenStore: TokenStorage {
    let redis: RedisClient

    public init(redis: RedisClient) {
        self.redis = redis
    }

    public func save(digest: String, user: String, ttl: Duration) async throws {
        let seconds = String(ttl.components.seconds)
        let replies = try await redis.pipeline([
            RedisCommand("SET", RedisKeys.token(digest), user, "EX", seconds),
            RedisCommand("SADD", RedisKeys.userTokens(user), digest),
            RedisCommand("EXPIRE", RedisKeys.userTokens(user), seconds),
        ])
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
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

    public func revokeAll(user: String) async throws -> Int {
        let digests = try await redis.send(RedisCommand("SMEMBERS", RedisKeys.userTokens(user))).array?.compactMap(\.string) ?? []
        guard !digests.isEmpty else { return 0 }
        // Each token lives in its own slot: one DEL per token, a revocation announced per token, in one pipeline.
        var commands = digests.flatMap { digest in
            [RedisCommand("DEL", RedisKeys.token(digest)), redis.publishCommand(digest, to: RedisKeys.tokensRevoked)]
        }
        commands.append(RedisCommand("SREM", [RedisKeys.userTokens(user)] + digests))
        let replies = try await redis.pipeline(commands)
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
        return stride(from: 0, to: digests.count * 2, by: 2).filter { replies[$0].int == 1 }.count
    }
}
