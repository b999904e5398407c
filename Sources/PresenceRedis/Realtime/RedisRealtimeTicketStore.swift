import PresenceCore
import Redis

/// ``RealtimeTicketStorage`` in Redis: `realtime:ticket:{<sha256>}` → username with a TTL, taken with `GETDEL` (one
/// key, one slot: the same on a Redis Cluster).
public struct RedisRealtimeTicketStore: RealtimeTicketStorage {
    let redis: RedisClient

    public init(redis: RedisClient) {
        self.redis = redis
    }

    public func save(digest: String, user: String, ttl: Duration) async throws {
        try await redis.send(RedisCommand("SET", RedisKeys.realtimeTicket(digest), user, "EX", String(ttl.components.seconds)))
    }

    public func take(digest: String) async throws -> String? {
        try await redis.send(RedisCommand("GETDEL", RedisKeys.realtimeTicket(digest))).string
    }
}
