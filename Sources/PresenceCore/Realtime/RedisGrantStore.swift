import Redis

/// ``GrantStorage`` in Redis: a hash per socket (`pusher:grants:{<socket>}`, channel → user) with a TTL.
public struct RedisGrantStore: GrantStorage {
    let redis: RedisClient

    public init(redis: RedisClient) {
        self.redis = redis
    }

    public func record(socket: String, channel: String, user: String, ttl: Duration) async throws {
        let replies = try await redis.pipeline([
            RedisCommand("HSET", RedisKeys.pusherGrants(socket), channel, user),
            RedisCommand("EXPIRE", RedisKeys.pusherGrants(socket), String(ttl.components.seconds)),
        ])
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
    }

    public func holder(socket: String, channel: String) async throws -> String? {
        try await redis.send(RedisCommand("HGET", RedisKeys.pusherGrants(socket), channel)).string
    }
}
