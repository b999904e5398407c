import Redis

/// ``ExpiryStorage`` in Redis: `presence:expiries` (sorted by expiry, on Redis's clock); claims with
/// `presence_sweep.lua` (ZREM of expired members, so only one worker gets each), one round trip for all rooms.
public struct RedisExpiryStore: ExpiryStorage {
    let redis: RedisClient

    public init(redis: RedisClient) {
        self.redis = redis
    }

    public func due(limit: Int) async throws -> (now: Int64, entries: [String]) {
        let due = try await redis.run(Scripts.expiryDue, keys: [RedisKeys.presenceExpiries], arguments: [String(limit)])
        guard let v = due.array, v.count == 2, let now = v[0].int else {
            throw RedisError.protocolError("unexpected expiry_due reply \(due)")
        }
        return (Int64(now), (v[1].array ?? []).compactMap(\.string))
    }

    public func claimExpired(rooms: [String]) async throws -> [ExpiredClaim?] {
        guard !rooms.isEmpty else { return [] }
        let replies = try await redis.run(rooms.map { room in
            RedisScriptCall(
                Scripts.presenceSweep,
                keys: [RedisKeys.roomMeta(room), RedisKeys.roomMembers(room), RedisKeys.roomJoined(room)],
                arguments: []
            )
        })
        return replies.map { reply in
            guard let r = reply.array, r.count == 3, let count = r[0].int else { return nil }
            return ExpiredClaim(users: (r[1].array ?? []).compactMap(\.string), userCount: count, meta: r[2].hashFields)
        }
    }

    public func acknowledge(_ entries: [String], now: Int64) async throws {
        guard !entries.isEmpty else { return }
        try await redis.run(Scripts.expiryAck, keys: [RedisKeys.presenceExpiries], arguments: [String(now)] + entries)
    }
}
