/// Presence channels (`presence-*`) on the presence store. `presence-room-<id>` is chat room `<id>` itself: a
/// subscribed user is present in the room while one of their sockets lives. Other presence channels get a room of
/// their own (`pch:<channel>`). Each socket is an entry refreshed by its worker (``SocketPresenceStorage``), so a user
/// leaves on their last disconnect, and the sockets of a dead worker lapse and the sweeper announces the user.
public struct ChannelPresence: Sendable {
    let sockets: any SocketPresenceStorage
    let presence: any PresenceStorage
    let chat: ChatService
    /// How long a socket or presence lasts without its worker refreshing it.
    public let ttl: Duration

    public init(sockets: any SocketPresenceStorage, presence: any PresenceStorage, chat: ChatService, ttl: Duration) {
        self.sockets = sockets
        self.presence = presence
        self.chat = chat
        self.ttl = ttl
    }

    /// The store room behind a presence channel, and whether it is a chat room.
    public static func room(for channel: String) -> (id: String, isChatRoom: Bool) {
        let prefix = "presence-room-"
        if channel.hasPrefix(prefix) {
            return (String(channel.dropFirst(prefix.count)), true)
        }
        return ("pch:" + channel, false)
    }

    /// A socket of `user` joins `channel`. Returns whether the user is new there, and the members now present.
    public func attach(channel: String, user: String, socket: String) async throws -> (isNew: Bool, members: [String]) {
        let isNew = try await join(channel: channel, user: user, socket: socket)
        let members = try await presence.presentUsers(room: Self.room(for: channel).id, ttl: ttl).map(\.username)
        return (isNew, members)
    }

    /// A socket of `user` joins `channel` without reading who else is there (a channel of the whole app, such as the
    /// signed-in users'). Returns whether the user is new there.
    @discardableResult
    public func join(channel: String, user: String, socket: String) async throws -> Bool {
        let (room, isChat) = Self.room(for: channel)
        let joined = try await sockets.attachSocket(socket, user: user, room: room, openingChannel: isChat ? nil : channel, ttl: ttl)
        if joined.isNew { await announce(room: room, isChat: isChat, channel: channel, user: user, action: .joined, count: joined.userCount, meta: joined.meta) }
        return joined.isNew
    }

    /// Which of `users` are present on `channel` now.
    public func present(channel: String, among users: [String]) async throws -> [String] {
        try await presence.present(room: Self.room(for: channel).id, among: users)
    }

    /// A socket of `user` leaves `channel`; the user leaves when it was their last socket there.
    public func detach(channel: String, user: String, socket: String) async throws {
        let (room, isChat) = Self.room(for: channel)
        if let left = try await sockets.detachSocket(socket, user: user, room: room) {
            await announce(room: room, isChat: isChat, channel: channel, user: user, action: .left, count: left.userCount, meta: left.meta)
        }
    }

    /// Refreshes the sockets a worker holds (and their users' presence), in one round trip. Returns the entries whose
    /// presence had lapsed meanwhile (swept, or removed by an access change): the caller decides whether they may
    /// come back (``attach(channel:user:socket:)``).
    public func refresh(_ entries: [(channel: String, user: String, socket: String)]) async throws -> [(channel: String, user: String, socket: String)] {
        let lapsed = try await sockets.refreshSockets(
            entries.map { SocketEntry(room: Self.room(for: $0.channel).id, user: $0.user, socket: $0.socket) }, ttl: ttl
        )
        return lapsed.map { entries[$0] }
    }

    // MARK: - ryOS's global presence

    /// The app-wide presence channel of ryOS's UI: every signed-in user whose client is open.
    public static let globalChannel = "presence-global"
    /// How long a heartbeat keeps a user there (ryOS's UI beats every 60 s while visible, and forgets a user after 90 s).
    public static let heartbeatTTL = Duration.seconds(90)
    /// The stand-in socket of heartbeat presence: a user's sockets on `presence-global` keep them there too.
    static let heartbeatSocket = "heartbeat"

    /// A heartbeat of `user`'s client: present on ``globalChannel`` for ``heartbeatTTL`` (a real presence in the
    /// store, announced as a member when new, expired by the sweeper), and `user-heartbeat {username, timestamp}` for
    /// its subscribers.
    public func heartbeat(user: String) async throws {
        let (room, _) = Self.room(for: Self.globalChannel)
        let joined = try await sockets.attachSocket(
            Self.heartbeatSocket, user: user, room: room, openingChannel: Self.globalChannel, ttl: Self.heartbeatTTL
        )
        var events = [BroadcastEvent(
            .userHeartbeat, channel: Self.globalChannel,
            data: ["username": .string(user), "timestamp": .int64(joined.member.lastSeen)]
        )]
        if joined.isNew { events.append(ChatService.memberEvent(channel: Self.globalChannel, user: user, action: .joined)) }
        await chat.broadcaster.publish(events)
    }

    /// Users present on ``globalChannel`` now, by name.
    public func globalMembers() async throws -> [String] {
        try await presence.presentUsers(room: Self.room(for: Self.globalChannel).id, ttl: Self.heartbeatTTL).map(\.username).sorted()
    }

    /// Users present on a presence channel now.
    public func members(channel: String) async throws -> [String] {
        try await presence.presentUsers(room: Self.room(for: channel).id, ttl: ttl).map(\.username).sorted()
    }

    func announce(room: String, isChat: Bool, channel: String, user: String, action: PresenceAction, count: Int, meta: [String: String]) async {
        if isChat, await chat.announcePresence(room: room, users: [user], action: action, userCount: count, meta: meta) {
            return
        }
        await chat.broadcaster.publish([ChatService.memberEvent(channel: channel, user: user, action: action)])
    }
}
