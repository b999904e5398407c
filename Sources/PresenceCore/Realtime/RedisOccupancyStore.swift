import Redis

/// ``OccupancyStorage`` in Redis: `pusher:channel:{<channel>}:sockets` and the live-channel index `pusher:channels:{…}`
/// (spread over ``RedisKeys/spreadBuckets`` keys by channel name), sorted sets scored by expiry (`expiring_touch.lua`,
/// `expiring_members.lua`).
public struct RedisOccupancyStore: OccupancyStorage {
    let redis: RedisClient

    public init(redis: RedisClient) {
        self.redis = redis
    }

    public func touch(_ subscriptions: [(channel: String, socket: String)], ttl: Duration) async throws {
        guard !subscriptions.isEmpty else { return }
        let ms = String(ttl.milliseconds)
        var calls: [RedisScriptCall] = []
        var channels = Set<String>()
        for entry in subscriptions {
            calls.append(RedisScriptCall(Scripts.expiringTouch, keys: [RedisKeys.pusherChannelSockets(entry.channel)], arguments: [entry.socket, ms]))
            channels.insert(entry.channel)
        }
        for channel in channels {
            calls.append(RedisScriptCall(
                Scripts.expiringTouch, keys: [RedisKeys.pusherChannels(bucket: RedisKeys.spreadBucket(of: channel))], arguments: [channel, ms]
            ))
        }
        _ = try await redis.run(calls)
    }

    public func remove(channel: String, socket: String) async throws {
        try await redis.send(RedisCommand("ZREM", RedisKeys.pusherChannelSockets(channel), socket))
    }

    public func liveChannels() async throws -> [String] {
        let replies = try await redis.run((0..<RedisKeys.spreadBuckets).map {
            RedisScriptCall(Scripts.expiringMembers, keys: [RedisKeys.pusherChannels(bucket: $0)], arguments: [])
        })
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
        return replies.flatMap { ($0.array?.last?.array ?? []).compactMap(\.string) }.sorted()
    }

    public func counts(_ channels: [String], users: Bool) async throws -> [(subscriptions: Int, users: Int?)] {
        guard !channels.isEmpty else { return [] }
        var calls = channels.map { RedisScriptCall(Scripts.expiringMembers, keys: [RedisKeys.pusherChannelSockets($0)], arguments: []) }
        if users {
            calls += channels.map { RedisScriptCall(Scripts.presenceCount, keys: [RedisKeys.roomMembers(ChannelPresence.room(for: $0).id)], arguments: []) }
        }
        let replies = try await redis.run(calls)
        return channels.indices.map { index in
            (replies[index].array?.first?.int ?? 0, users ? (replies[channels.count + index].int ?? 0) : nil)
        }
    }
}
