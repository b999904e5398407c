import PresenceCore
import Redis

/// Sockets behind presence in Redis: `room:{id}:sockets:<user>` holds a user's sockets in a room, each with its own
/// expiry (`expiring_touch.lua`); the user's presence is the room's ordinary presence entry.
extension RedisPresenceStore: SocketPresenceStorage {
    public func attachSocket(
        _ socket: String, user: String, room: String, openingChannel: String?, ttl: Duration, state: JSONValue?, maxMembers: Int?
    ) async throws -> PresenceJoin {
        var calls: [RedisScriptCall] = []
        if let channel = openingChannel {
            calls.append(RedisScriptCall(Scripts.channelRoomOpen, keys: [RedisKeys.roomMeta(room)], arguments: [room, channel]))
        }
        calls.append(touchCall(socket: socket, user: user, room: room, ttl: ttl))
        calls.append(joinCall(room: room, user: user, ttl: ttl, state: state, maxMembers: maxMembers))
        let replies = try await runRegistered(room: room, ttl: ttl, calls)
        do {
            return try Self.parseJoin(replies[replies.count - 1], user: user, ttl: ttl)
        } catch let full as PresenceChannelFull {
            // The refused socket leaves no entry behind (it would hold the user's presence when they come back).
            _ = try? await redis.send(RedisCommand("ZREM", RedisKeys.roomSockets(room, user), socket))
            throw full
        }
    }

    public func detachSocket(_ socket: String, user: String, room: String) async throws -> PresenceLeave? {
        let attendance = Self.attendance(room: room, limit: attendanceLimit)
        let reply = try await redis.run(
            Scripts.socketDetach,
            keys: [RedisKeys.roomMeta(room), RedisKeys.roomMembers(room), RedisKeys.roomJoined(room),
                   RedisKeys.roomStates(room), RedisKeys.roomSockets(room, user), RedisKeys.roomPresence(room, user)]
                + attendance.keys,
            arguments: [user, socket, attendance.limit]
        )
        guard let v = reply.array, v.count == 3, let left = v[0].int, let count = v[1].int else {
            throw RedisError.protocolError("unexpected socket_detach reply \(reply)")
        }
        guard left == 1 else { return nil }
        return PresenceLeave(wasPresent: true, userCount: count, state: [:], meta: v[2].hashFields)
    }

    public func refreshSockets(_ entries: [SocketEntry], ttl: Duration) async throws -> [Int] {
        guard !entries.isEmpty else { return [] }
        // `socket_refresh.lua`: only a socket still recorded and live is written, so a refresh that raced its leave
        // does not bring it back.
        let replies = try await redis.run(entries.map { entry in
            RedisScriptCall(
                Scripts.socketRefresh,
                keys: [RedisKeys.roomSockets(entry.room, entry.user), RedisKeys.roomMembers(entry.room),
                       RedisKeys.roomPresence(entry.room, entry.user)],
                arguments: [entry.socket, entry.user, String(ttl.milliseconds)]
            )
        })
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
        return entries.indices.filter { replies[$0].int != 2 }
    }

    private func touchCall(socket: String, user: String, room: String, ttl: Duration) -> RedisScriptCall {
        RedisScriptCall(Scripts.expiringTouch, keys: [RedisKeys.roomSockets(room, user)], arguments: [socket, String(ttl.milliseconds)])
    }
}
