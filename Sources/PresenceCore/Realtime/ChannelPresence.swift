import Redis

/// Presence channels (`presence-*`) on the presence engine. `presence-room-<id>` is chat room `<id>` itself: a
/// subscribed user is present in the room while one of their sockets lives. Other presence channels get a room of
/// their own (`pch:<channel>`). Each socket is an entry in `room:{id}:sockets:<user>` refreshed by its worker, so a
/// user leaves on their last disconnect, and the sockets of a dead worker lapse and the sweeper announces the user.
public struct ChannelPresence: Sendable {
    let redis: RedisClient
    let engine: RedisPresenceStore
    let chat: ChatService
    /// How long a socket or presence lasts without its worker refreshing it.
    public let ttl: Duration

    public init(redis: RedisClient, chat: ChatService, ttl: Duration) {
        self.redis = redis
        self.engine = RedisPresenceStore(redis: redis)
        self.chat = chat
        self.ttl = ttl
    }

    /// The engine room behind a presence channel, and whether it is a chat room.
    public static func room(for channel: String) -> (id: String, isChatRoom: Bool) {
        let prefix = "presence-room-"
        if channel.hasPrefix(prefix) {
            return (String(channel.dropFirst(prefix.count)), true)
        }
        return ("pch:" + channel, false)
    }

    /// A socket of `user` joins `channel`. Returns whether the user is new there, and the members now present.
    public func attach(channel: String, user: String, socket: String) async throws -> (isNew: Bool, members: [String]) {
        let (room, isChat) = Self.room(for: channel)
        var calls: [RedisScriptCall] = []
        if !isChat {
            calls.append(RedisScriptCall(Scripts.channelRoomOpen, keys: [RedisKeys.roomMeta(room)], arguments: [room, channel]))
        }
        calls.append(RedisScriptCall(Scripts.expiringTouch, keys: [RedisKeys.roomSockets(room, user)], arguments: [socket, String(ttl.milliseconds)]))
        calls.append(engine.joinCall(room: room, user: user, ttl: ttl, state: nil))
        let replies = try await redis.run(calls)
        let joined = try RedisPresenceStore.parseJoin(replies[replies.count - 1], user: user, ttl: ttl)
        try await redis.send(engine.indexCommand(room: room, user: user, expiresAt: joined.member.expiresAt))
        if joined.isNew { await announce(room: room, isChat: isChat, channel: channel, user: user, action: "joined", count: joined.userCount, meta: joined.meta) }
        let members = try await engine.allMembers(room: room, ttl: ttl).map(\.username)
        return (joined.isNew, members)
    }

    /// A socket of `user` leaves `channel`; the user leaves when it was their last socket there.
    public func detach(channel: String, user: String, socket: String) async throws {
        let (room, isChat) = Self.room(for: channel)
        let reply = try await redis.run(
            Scripts.socketDetach,
            keys: [RedisKeys.roomMeta(room), RedisKeys.roomMembers(room), RedisKeys.roomJoined(room),
                   RedisKeys.roomPresence(room, user), RedisKeys.roomSockets(room, user)],
            arguments: [user, socket]
        )
        guard let v = reply.array, v.count == 3, let left = v[0].int, let count = v[1].int else {
            throw RedisError.protocolError("unexpected socket_detach reply \(reply)")
        }
        if left == 1 {
            await announce(room: room, isChat: isChat, channel: channel, user: user, action: "left", count: count, meta: v[2].hashFields)
        }
    }

    /// Refreshes the sockets a worker holds (and their users' presence), in one round trip. Returns the entries whose
    /// presence had lapsed meanwhile (swept, or removed by an access change): the caller decides whether they may
    /// come back (``attach(channel:user:socket:)``).
    public func refresh(_ entries: [(channel: String, user: String, socket: String)]) async throws -> [(channel: String, user: String, socket: String)] {
        guard !entries.isEmpty else { return [] }
        var calls: [RedisScriptCall] = []
        for entry in entries {
            let (room, _) = Self.room(for: entry.channel)
            calls.append(RedisScriptCall(Scripts.expiringTouch, keys: [RedisKeys.roomSockets(room, entry.user)], arguments: [entry.socket, String(ttl.milliseconds)]))
            calls.append(RedisScriptCall(
                Scripts.presenceRefresh,
                keys: [RedisKeys.roomMembers(room), RedisKeys.roomPresence(room, entry.user), RedisKeys.roomJoined(room)],
                arguments: [entry.user, String(ttl.milliseconds), ""]
            ))
        }
        let replies = try await redis.run(calls)
        var index: [RedisCommand] = []
        var lapsed: [(channel: String, user: String, socket: String)] = []
        for (i, entry) in entries.enumerated() {
            let (room, _) = Self.room(for: entry.channel)
            if let v = replies[2 * i + 1].array, let expiresAt = v.first?.int {
                index.append(engine.indexCommand(room: room, user: entry.user, expiresAt: Int64(expiresAt)))
            } else {
                lapsed.append(entry)
            }
        }
        if !index.isEmpty { _ = try await redis.pipeline(index) }
        return lapsed
    }

    /// The script call counting the users present on a presence channel now (to pipeline with others).
    public func countCall(channel: String) -> RedisScriptCall {
        engine.countCall(room: Self.room(for: channel).id)
    }

    /// Users present on a presence channel now.
    public func members(channel: String) async throws -> [String] {
        try await engine.allMembers(room: Self.room(for: channel).id, ttl: ttl).map(\.username).sorted()
    }

    func announce(room: String, isChat: Bool, channel: String, user: String, action: String, count: Int, meta: [String: String]) async {
        if isChat, await chat.announcePresence(room: room, users: [user], action: action, userCount: count, meta: meta) {
            return
        }
        await chat.broadcaster.publish([ChatService.memberEvent(channel: channel, user: user, action: action)])
    }
}
