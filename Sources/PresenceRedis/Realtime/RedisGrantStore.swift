import PresenceCore
import Foundation
import Redis

/// ``GrantStorage`` in Redis: a hash per socket (`pusher:grants:{<socket>}`, channel → user) with a TTL, and per user
/// the grants recorded for them (`user:{<name>}:grants`, an expiring set of `<socket> <channel>`), so a logout can
/// forget them all.
public struct RedisGrantStore: GrantStorage {
    let redis: RedisClient

    public init(redis: RedisClient) {
        self.redis = redis
    }

    public func record(socket: String, channel: String, user: String, ttl: Duration) async throws {
        // The index is scored by expiry on this worker's clock (a few ms of skew between workers only moves when an
        // entry is pruned, long after its grant lapsed or was used), so the whole record is one round trip.
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let index = RedisKeys.userGrants(user)
        let replies = try await redis.pipeline([
            RedisCommand("HSET", RedisKeys.pusherGrants(socket), channel, user),
            RedisCommand("EXPIRE", RedisKeys.pusherGrants(socket), String(ttl.components.seconds)),
            RedisCommand("ZADD", index, String(now + ttl.milliseconds), "\(socket) \(channel)"),
            RedisCommand("ZREMRANGEBYSCORE", index, "-inf", String(now)),
            RedisCommand("PEXPIRE", index, String(ttl.milliseconds * 2)),
        ])
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
    }

    public func holder(socket: String, channel: String) async throws -> String? {
        try await redis.send(RedisCommand("HGET", RedisKeys.pusherGrants(socket), channel)).string
    }

    public func revokeAll(user: String) async throws {
        let entries = try await redis.send(RedisCommand("ZRANGE", RedisKeys.userGrants(user), "0", "-1")).array?.compactMap(\.string) ?? []
        var commands: [RedisCommand] = []
        for entry in entries {
            guard let space = entry.firstIndex(of: " ") else { continue }
            // A field another user's grant overwrote since goes too: that costs its holder one more /pusher/auth.
            commands.append(RedisCommand("HDEL", RedisKeys.pusherGrants(String(entry[..<space])), String(entry[entry.index(after: space)...])))
        }
        if !entries.isEmpty { commands.append(RedisCommand("ZREM", [RedisKeys.userGrants(user)] + entries)) }
        guard !commands.isEmpty else { return }
        let replies = try await redis.pipeline(commands)
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
    }
}
