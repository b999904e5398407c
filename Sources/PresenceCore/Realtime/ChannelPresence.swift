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

    /// A member of a presence channel as its subscribers see it: the user id, and the `user_info` of their signature.
    public struct Member: Sendable, Equatable {
        public var id: String
        public var info: JSONValue

        public init(id: String, info: JSONValue) {
            self.id = id
            self.info = info
        }
    }

    /// What a presence channel's subscriber is told on subscribing: some of its members, and how many there are.
    public struct Snapshot: Sendable, Equatable {
        public var members: [Member]
        public var count: Int

        public init(members: [Member], count: Int) {
            self.members = members
            self.count = count
        }

        /// Whether some members are left out (a room-backed channel larger than the cap).
        public var isPartial: Bool { count > members.count }

        /// The same, with `member` listed: in place of the last listed one when the list is partial.
        public func including(_ member: Member) -> Snapshot {
            guard !members.contains(where: { $0.id == member.id }) else { return self }
            var copy = self
            if isPartial, !copy.members.isEmpty {
                copy.members[copy.members.count - 1] = member
            } else {
                copy.members.append(member)
                copy.count = max(copy.count, copy.members.count)
            }
            return copy
        }
    }

    /// The `user_info` of a member whose signature gave none: what this service's own `/pusher/auth` signs, and what
    /// chat switches and heartbeats announce.
    public static func defaultUserInfo(_ user: String) -> JSONValue { ["username": .string(user)] }

    /// Whether `channel` is one of this service's own presence channels, backed by a room anyone with access may be in
    /// (a chat room, ryOS's global presence): it takes every member, and tells a subscriber at most the member cap's
    /// number of them. Other presence channels are the app's, capped like Pusher's.
    public static func isRoomBacked(_ channel: String) -> Bool {
        channel.hasPrefix("presence-room-") || channel == globalChannel
    }

    /// The member's presence state that keeps `userInfo` as signed (`{"user_info": …}` in `room:{id}:states`); `{}`,
    /// nothing stored, for none or the default one.
    static func state(user: String, userInfo: JSONValue?) -> JSONValue {
        guard let userInfo, userInfo != .null, userInfo != defaultUserInfo(user) else { return [:] }
        return ["user_info": userInfo]
    }

    /// A member's `user_info`, from their presence state.
    static func userInfo(user: String, state: JSONValue) -> JSONValue {
        state["user_info"] ?? defaultUserInfo(user)
    }

    /// A socket of `user` joins `channel`. Returns whether the user is new there, and the members now present.
    public func attach(channel: String, user: String, socket: String) async throws -> (isNew: Bool, members: [String]) {
        let isNew = try await join(channel: channel, user: user, socket: socket)
        let members = try await presence.presentUsers(room: Self.room(for: channel).id, ttl: ttl).map(\.username)
        return (isNew, members)
    }

    /// A socket of `user` subscribes to `channel` with the `user_info` its signature gave (`nil`: none), kept with the
    /// member's presence and announced as given. On an app's channel a new member is refused once `maxMembers` are
    /// present (``PresenceChannelFull``; members already there still come in); a room-backed one takes everyone.
    /// Returns whether the user is new there, and at most `maxMembers` of the members (`user` among them) with the
    /// true count.
    public func subscribe(
        channel: String, user: String, socket: String, userInfo: JSONValue?, maxMembers: Int
    ) async throws -> (isNew: Bool, snapshot: Snapshot) {
        let isNew = try await join(
            channel: channel, user: user, socket: socket, state: Self.state(user: user, userInfo: userInfo),
            maxMembers: Self.isRoomBacked(channel) ? nil : maxMembers
        )
        return (isNew, try await snapshot(channel: channel, limit: maxMembers, including: user))
    }

    /// At most `limit` members of `channel`, in join order (with `including` among them when present), and how many
    /// there are in all: one page of the member list and the listed members' states, whatever the channel's size
    /// (plus the count when there are more).
    public func snapshot(channel: String, limit: Int, including user: String? = nil) async throws -> Snapshot {
        let room = Self.room(for: channel).id
        let page = try await presence.members(room: room, ttl: ttl, limit: max(1, limit), cursor: nil)
        var ids = page.members.map(\.username)
        if let user, !ids.contains(user) {
            if page.nextCursor != nil, !ids.isEmpty { ids[ids.count - 1] = user } else { ids.append(user) }
        }
        let count = page.nextCursor == nil ? ids.count : max(ids.count, try await presence.presentCount(room: room))
        return Snapshot(members: try await members(channel: channel, users: ids), count: count)
    }

    /// `users` as members of `channel`, each with their `user_info` (one read, whatever their number).
    public func members(channel: String, users: [String]) async throws -> [Member] {
        let states = try await presence.states(room: Self.room(for: channel).id, users: users)
        return zip(users, states).map { Member(id: $0, info: Self.userInfo(user: $0, state: $1)) }
    }

    /// A socket of `user` joins `channel` without reading who else is there (a channel of the whole app, such as the
    /// signed-in users'). Returns whether the user is new there.
    @discardableResult
    public func join(channel: String, user: String, socket: String) async throws -> Bool {
        try await join(channel: channel, user: user, socket: socket, state: nil, maxMembers: nil)
    }

    /// `state` replaces the member's presence state (`nil` keeps it); `maxMembers` caps new members.
    private func join(channel: String, user: String, socket: String, state: JSONValue?, maxMembers: Int?) async throws -> Bool {
        let (room, isChat) = Self.room(for: channel)
        let joined = try await sockets.attachSocket(
            socket, user: user, room: room, openingChannel: isChat ? nil : channel, ttl: ttl, state: state, maxMembers: maxMembers
        )
        if joined.isNew {
            await announce(
                room: room, isChat: isChat, channel: channel, user: user, action: .joined, count: joined.userCount,
                meta: joined.meta, userInfo: Self.userInfo(user: user, state: joined.member.state)
            )
        }
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

    /// Refreshes the sockets a worker holds (and their users' presence), in one round trip; a socket no longer
    /// recorded (it left meanwhile) is not written back. Returns the entries whose socket or presence had lapsed or
    /// gone (swept, removed by an access change, or left): the caller decides whether they may come back
    /// (``attach(channel:user:socket:)``).
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

    func announce(
        room: String, isChat: Bool, channel: String, user: String, action: PresenceAction, count: Int, meta: [String: String],
        userInfo: JSONValue? = nil
    ) async {
        if isChat, await chat.announcePresence(room: room, users: [user], action: action, userCount: count, meta: meta, userInfo: userInfo) {
            return
        }
        await chat.broadcaster.publish([ChatService.memberEvent(channel: channel, user: user, action: action, userInfo: userInfo)])
    }
}
