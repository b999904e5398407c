import PresenceCore
import Redis

/// Cache channels' last events in Redis, `pusher:cache:{<channel>}` (written by ``RedisEventPublisher/deliver(_:)`` in
/// the same pipeline as the event's publish, expiring after ``CacheChannels/ttl``).
public struct RedisChannelCache: ChannelCache {
    let redis: RedisClient

    public init(redis: RedisClient) {
        self.redis = redis
    }

    public func last(on channel: String) async throws -> String? {
        let reply = try await redis.send(RedisCommand("GET", RedisKeys.channelCache(channel)))
        if let message = reply.errorMessage { throw RedisError.server(message) }
        return reply.string
    }
}
