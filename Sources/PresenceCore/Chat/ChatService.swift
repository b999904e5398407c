import Foundation
import Logging
import Metrics

/// The chat face: rooms, presence switches and heartbeats, messages, and the events they broadcast.
/// Decides who may do what; storage is behind ``RoomStorage``, ``PresenceStorage`` and ``HistoryStorage``, events go
/// out through an ``EventPublisher``.
public struct ChatService: Sendable {
    public let settings: ChatSettings
    public let rooms: any RoomStorage
    public let presence: any PresenceStorage
    public let history: any HistoryStorage
    public let users: UserDirectory
    public let broadcaster: any EventPublisher
    public let messageLimiter: SlidingWindowLimiter
    /// Rooms created per user per hour, and users named in new private rooms per user per hour.
    public let roomLimiter: SlidingWindowLimiter
    public let inviteLimiter: SlidingWindowLimiter
    /// Presence changes per user (switches here, presence-channel subscribes in the realtime layer).
    public let presenceLimiter: SlidingWindowLimiter
    /// Typing notices per user (ryOS's UI sends at most one per 2 s).
    public let typingLimiter: SlidingWindowLimiter
    /// Ids of rooms seen to be public in the last 5 s: a switch into one skips the separate access check.
    let publicRooms = ExpiringCache<Bool>(lifetime: .seconds(5), capacity: 10_000)
    let logger: Logger
    /// `message_unseen` notices for private rooms' members (`nil`: no receiver wants them).
    public var unseen: UnseenMessages?

    public init(
        rooms: any RoomStorage, presence: any PresenceStorage, history: any HistoryStorage, users: UserDirectory,
        events: any EventPublisher, limits: any RateLimitStorage, settings: ChatSettings, logger: Logger
    ) {
        self.settings = settings
        self.rooms = rooms
        self.presence = presence
        self.history = history
        self.users = users
        self.broadcaster = events
        self.messageLimiter = SlidingWindowLimiter(
            name: "messages", limit: settings.messageLimit, window: settings.messageWindow, storage: limits
        )
        self.roomLimiter = SlidingWindowLimiter(name: "rooms", limit: settings.roomLimit, window: .seconds(3600), storage: limits)
        self.inviteLimiter = SlidingWindowLimiter(name: "invites", limit: settings.inviteLimit, window: .seconds(3600), storage: limits)
        self.presenceLimiter = SlidingWindowLimiter(name: "presence", limit: settings.presenceLimit, window: .seconds(60), storage: limits)
        self.typingLimiter = SlidingWindowLimiter(name: "typing", limit: 60, window: .seconds(60), storage: limits)
        self.logger = logger
    }

    /// The refusal of a support room's id on a chat route.
    static let supportRoomRefusal = DomainError.invalid("Room IDs starting with ticket_ belong to support rooms")

    /// Counts one request of `user` against `limiter`; throws ``DomainError/rateLimited(_:)`` past it.
    func limit(_ limiter: SlidingWindowLimiter, _ user: String, cost: Int = 1) async throws {
        let decision = try await limiter.check(user, cost: cost)
        guard decision.allowed else { throw DomainError.rateLimited(decision) }
    }

    public func isAdmin(_ user: String) -> Bool {
        settings.admins.contains(user) && (settings.roster?.isAdmin(user) ?? true)
    }

    // MARK: - Rooms

    /// Creates a room. Public rooms: admins only, id derived from the name. Private rooms: any user, random id,
    /// the creator among the members, every member registered.
    public func createRoom(name rawName: String, type: Room.Kind, members rawMembers: [String], by user: String) async throws -> Room {
        let name = rawName.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty, name.unicodeScalars.count <= 64 else { throw DomainError.invalid("Room name must be 1-64 characters") }
        guard Validation.isDisplaySafe(name) else {
            throw DomainError.invalid("Room name must not contain control or bidirectional-override characters")
        }
        let room: Room
        switch type {
        case .public:
            guard isAdmin(user) else { throw DomainError.forbidden("Forbidden") }
            let id = name.lowercased().replacingOccurrences(of: " ", with: "-")
            guard Validation.isRoomID(id) else { throw DomainError.invalid("Invalid room ID format") }
            guard Validation.isNewChatRoomID(id) else { throw DomainError.invalid("Room IDs starting with ticket_ are reserved for support rooms") }
            try await limit(roomLimiter, user)
            let result = try await rooms.create(id: id, name: name, type: .public, createdBy: user, members: [])
            guard result.created else { throw DomainError.conflict("Room already exists") }
            room = result.room
        case .private:
            var members: [String] = []
            for raw in rawMembers {
                guard let member = Validation.username(raw) else { throw DomainError.invalid("Unknown user: \(raw)") }
                if !members.contains(member) { members.append(member) }
            }
            guard members.count <= 100 else { throw DomainError.invalid("A private room has at most 100 members") }
            let known = try await users.existing(members)
            if let unknown = zip(members, known).first(where: { !$1 })?.0 {
                throw DomainError.invalid("Unknown user: \(unknown)")
            }
            // Naming others costs from the hourly invitation budget, creating from the room budget: a user cannot
            // fill someone's room list with rooms they never asked for.
            let invited = members.filter { $0 != user }.count
            if invited > 0 { try await limit(inviteLimiter, user, cost: invited) }
            try await limit(roomLimiter, user)
            if !members.contains(user) { members.append(user) }
            let id = RandomID.make().prefix(16)
            room = try await rooms.create(id: String(id), name: name, type: .private, createdBy: user, members: members).room
        }
        await broadcaster.publish(room.listChannels.map {
            BroadcastEvent(.roomUpdated, channel: $0, data: ["room": room.json])
        })
        return room
    }

    /// ryOS's name for a private room: its members, lowercased, sorted, as `@alice, @bob` (cut to the 64-character
    /// limit of room names).
    public static func privateRoomName(members: [String]) -> String {
        let names = Set(members.map { $0.lowercased() }).sorted()
        let name = names.map { "@" + $0 }.joined(separator: ", ")
        return name.unicodeScalars.count <= 64 ? name : String(name.prefix(61)) + "..."
    }

    /// Creates each default room unless it exists. Several workers starting at once: each room is created once.
    public func ensureDefaultRooms() async throws {
        for name in settings.defaultRooms {
            let id = name.lowercased()
            guard Validation.isRoomID(id) else { continue }
            let result = try await rooms.create(id: id, name: name, type: .public, createdBy: "system", members: [])
            if result.created { logger.info("Created default room", metadata: ["room": "\(id)"]) }
        }
    }

    /// Public rooms, plus `viewer`'s private rooms, with current user counts.
    public func listRooms(for viewer: String?) async throws -> [Room] {
        let ids = Array(Set(try await rooms.listIDs(for: viewer))).sorted()
        let found = try await rooms.get(ids)
        if found.count < ids.count {
            // Index entries of rooms that are gone (a deletion whose cleanup failed half way): drop them.
            let present = Set(found.map(\.id))
            try? await rooms.forget(ids.filter { !present.contains($0) }, for: viewer)
        }
        return found.filter { room in
            room.type == .public || (viewer.map { room.members?.contains($0) == true } ?? false)
        }.sorted { ($0.type == .public ? 0 : 1, $0.createdAt, $0.id) < ($1.type == .public ? 0 : 1, $1.createdAt, $1.id) }
    }

    /// A room `viewer` may see: 404 when unknown, 403 when private and `viewer` is not a member.
    public func room(_ id: String, viewer: String?, forbidden: String = "Forbidden") async throws -> Room {
        guard !Validation.isSupportRoomID(id) else { throw Self.supportRoomRefusal }
        guard let room = try await rooms.get(id) else { throw DomainError.roomNotFound }
        if room.type == .private, !(viewer.map { room.members?.contains($0) == true } ?? false) {
            throw DomainError.forbidden(forbidden)
        }
        return room
    }

    /// Deletes a public room (admins) or leaves a private one (members; the room goes below two members).
    public func deleteRoom(_ id: String, by user: String) async throws {
        let room = try await self.room(id, viewer: user)
        switch room.type {
        case .public:
            guard isAdmin(user) else { throw DomainError.forbidden("Forbidden") }
            publicRooms.remove(id)
            guard let deleted = try await rooms.delete(id) else { throw DomainError.roomNotFound }
            await broadcaster.publish(deleted.listChannels.map {
                BroadcastEvent(.roomDeleted, channel: $0, data: ["roomId": .string(id)])
            })
            await broadcaster.publish(AccessChange(user: nil, channels: Self.accessChannels(room: id)))
        case .private:
            guard let result = try await rooms.leavePrivate(id, user: user) else { throw DomainError.roomNotFound }
            var events: [BroadcastEvent] = []
            if result.deleted {
                events += result.before.listChannels.map {
                    BroadcastEvent(.roomDeleted, channel: $0, data: ["roomId": .string(id)])
                }
            } else {
                var after = result.before
                after.members = after.members?.filter { $0 != user }
                after.userCount = result.userCount
                events.append(BroadcastEvent(.roomDeleted, channel: "private-chats-\(user)", data: ["roomId": .string(id)]))
                events += after.listChannels.map {
                    BroadcastEvent(.roomUpdated, channel: $0, data: ["room": after.json])
                }
                // Present when leaving: the others see the leave as they would a switch away.
                if result.wasPresent {
                    events += presenceEvents(room: after, user: user, action: .left).filter { $0.event != ServiceEvent.roomUpdated.rawValue }
                }
            }
            await broadcaster.publish(events)
            await broadcaster.publish(AccessChange(user: result.deleted ? nil : user, channels: Self.accessChannels(room: id)))
        }
    }

    /// The signed channels of a chat room: access to them follows the room's.
    static func accessChannels(room id: String) -> [String] {
        ["private-room-\(id)", "presence-room-\(id)"]
    }

    // MARK: - Presence

    /// Leaves `previous` (absent or unknown is fine) and enters `next`. `next` is checked (404/403) before
    /// anything changes; then both scripts go in one pipelined round trip, and the bookkeeping and events in another.
    ///
    /// The check is its own round trip unless this worker saw `next` to be a public room in the last seconds
    /// (``publicRooms``): then `presence_join.lua` checks the room exists, atomically, and a room that turns out
    /// not to be public any more (deleted and re-created as private meanwhile) is left again at once and refused.
    public func switchRooms(user: String, previous: String?, next: String?) async throws {
        if let previous, Validation.isSupportRoomID(previous) { throw Self.supportRoomRefusal }
        if let next, Validation.isSupportRoomID(next) { throw Self.supportRoomRefusal }
        var nextRoom: Room?
        var limitChecked = false
        if let next, publicRooms.value(for: next) == nil {
            // The limit first, then the access check (a refused attempt still counts), then the switch.
            try await limit(presenceLimiter, user)
            limitChecked = true
            let room = try await room(next, viewer: user, forbidden: "Forbidden - not a room member")
            if room.type == .public { publicRooms.set(true, for: next) }
            nextRoom = room
        }
        // Leave, join, and the user's own bookkeeping (present rooms, lastActive); with no access check to make, the
        // limit goes in the same step as the bookkeeping.
        let outcome = try await presence.switchRooms(
            user: user, previous: previous, next: next, ttl: settings.presenceTTL, nextIsPublic: next != nil && nextRoom == nil,
            limit: limitChecked ? nil : presenceLimiter
        )

        // A join refused here is only possible when the room was deleted since it was checked or cached: the
        // leave still happened, so it is still announced before the error goes back.
        var joined: PresenceJoin?
        var joinError: (any Error)?
        if let next, let result = outcome.joined {
            do {
                let join = try result.get()
                if nextRoom == nil {
                    // A storage that could not check it in the same step: a room seen public must still be public.
                    guard let room = Room(meta: join.meta, userCount: join.userCount, members: nil), room.type == .public else {
                        publicRooms.remove(next)
                        _ = try? await presence.leave(room: next, user: user)
                        throw DomainError.forbidden("Forbidden - not a room member")
                    }
                    nextRoom = room
                }
                joined = join
            } catch {
                if case DomainError.forbidden? = error as? DomainError { publicRooms.remove(next) }
                joinError = error
                try? await presence.forgetPresentRooms([next], of: user)
            }
        }

        var events: [BroadcastEvent] = []
        if let previous, let left = outcome.left {
            if left.wasPresent, var room = Room(meta: left.meta, userCount: left.userCount, members: nil) {
                if room.type == .private { room = try await rooms.get(previous) ?? room }
                room.userCount = left.userCount
                events += presenceEvents(room: room, user: user, action: .left, roomChannels: !outcome.announced)
            }
        }
        if let next, var room = nextRoom, let joined {
            room.userCount = joined.userCount
            if joined.isNew { events += presenceEvents(room: room, user: user, action: .joined, roomChannels: !outcome.announced) }
        }
        // The events go out without holding the response: the switch itself is committed. Keyed by user: one user's
        // switches publish their events in the order they happened.
        broadcaster.publishDetached(events, orderKey: user)
        if let joinError { throw joinError }
        // The room the user's client now shows, which a heartbeat brings back if its presence lapses meanwhile (a
        // hidden tab stops beating).
        try? await users.setCurrentRoom(next, of: user, ttl: Self.currentRoomTTL)
    }

    /// How long the room a client shows is remembered without a switch or heartbeat.
    static let currentRoomTTL = Duration.seconds(24 * 3600)

    /// Refreshes `user`'s presence in `room`, or in every room the user is present in. Without a room (ryOS's
    /// heartbeat), the room the user's client shows (its last switch) comes back if its presence lapsed meanwhile,
    /// announced as a join; a room the user may no longer enter is forgotten.
    public func heartbeat(user: String, room: String?) async throws {
        let roomIDs: [String]
        if let room {
            guard !Validation.isSupportRoomID(room) else { throw Self.supportRoomRefusal }
            roomIDs = [room]
        } else {
            roomIDs = try await presence.presentRooms(of: user).filter { !Validation.isSupportRoomID($0) }
        }
        var refreshed: Set<String> = []
        for id in roomIDs {
            if try await presence.refresh(room: id, user: user, ttl: settings.presenceTTL) != nil {
                refreshed.insert(id)
            } else if room == nil {
                try await presence.forgetPresentRooms([id], of: user)
            }
        }
        if room == nil, let current = try await users.currentRoom(of: user), !refreshed.contains(current) {
            do {
                try await switchRooms(user: user, previous: nil, next: current)
            } catch let error as DomainError {
                switch error {
                case .roomNotFound, .forbidden: try? await users.setCurrentRoom(nil, of: user, ttl: Self.currentRoomTTL)
                default: throw error
                }
            }
        }
        try await users.touch(user)
    }

    /// Users present in a room now (any order), read in one range query.
    public func presentUsers(in id: String, viewer: String?) async throws -> [PresentUser] {
        _ = try await room(id, viewer: viewer)
        return try await presence.presentUsers(room: id, ttl: settings.presenceTTL)
    }

    /// One page of the users present in a room, in join order, after `cursor` (the last page's `nextCursor`): the
    /// same stable cursor as a support room's member list, so users who come and go between pages neither repeat nor
    /// push others out. ``DomainError/invalid(_:)`` for a cursor this service did not give.
    public func presentUsers(in id: String, viewer: String?, limit: Int, cursor: String?) async throws -> (members: [PresenceMember], nextCursor: String?) {
        _ = try await room(id, viewer: viewer)
        return try await presence.members(room: id, ttl: settings.presenceTTL, limit: limit, cursor: cursor)
    }

    /// How many users are present in a room now.
    public func presentCount(in id: String, viewer: String?) async throws -> Int {
        _ = try await room(id, viewer: viewer)
        return try await presence.presentCount(room: id)
    }

    /// Announces members the sweeper found expired (called by ``PresenceSweeper`` on the worker that claimed them).
    public func announceExpired(room id: String, users: [String], userCount: Int, meta: [String: String]) async {
        guard await announcePresence(room: id, users: users, action: .left, userCount: userCount, meta: meta) else { return }
        try? await presence.forgetPresentRoom(id, of: users)
    }

    /// Publishes `presence-update`, `room-updated` and the presence channel's member event for users who joined or
    /// left a chat room. Returns `false` (publishing nothing) when `meta` is not a chat room's.
    /// `userInfo`: the `user_info` of the member event, as the user's presence-channel signature gave it (one user).
    @discardableResult
    public func announcePresence(
        room id: String, users: [String], action: PresenceAction, userCount: Int, meta: [String: String], userInfo: JSONValue? = nil
    ) async -> Bool {
        guard var room = Room(meta: meta, userCount: userCount, members: nil) else { return false }
        if room.type == .private, let current = try? await rooms.get(id) { room = current }
        room.userCount = userCount
        await broadcaster.publish(users.flatMap { presenceEvents(room: room, user: $0, action: action, userInfo: userInfo) })
        return true
    }

    /// The events of `user` entering or leaving `room`: `room-updated` on its list channels, and, with `roomChannels`,
    /// `presence-update` on the room's channel and the member event on `presence-room-<id>` (which a storage may have
    /// published itself: ``PresenceSwitch/announced``; the member event is then marked ``BroadcastEvent/webhookOnly``).
    func presenceEvents(room: Room, user: String, action: PresenceAction, roomChannels: Bool = true, userInfo: JSONValue? = nil) -> [BroadcastEvent] {
        var events: [BroadcastEvent] = []
        if roomChannels {
            events.append(Self.presenceUpdate(room: room.id, type: room.type, user: user, action: action, userCount: room.userCount))
        }
        events += room.listChannels.map { BroadcastEvent(.roomUpdated, channel: $0, data: ["room": room.json]) }
        var member = Self.memberEvent(channel: Room.presenceChannel(id: room.id), user: user, action: action, userInfo: userInfo)
        member.webhookOnly = !roomChannels
        events.append(member)
        return events
    }

    /// `presence-update` on the channel of room `id` (by its `type`): `user` entered or left it, `userCount` present
    /// now. Built here only: a storage that announces a switch in the same step as the change
    /// (``PresenceSwitch/announced``) takes its text from here, for either type, and puts the count in then.
    public static func presenceUpdate(room id: String, type: Room.Kind, user: String, action: PresenceAction, userCount: Int) -> BroadcastEvent {
        BroadcastEvent(
            .presenceUpdate, channel: Room.channel(id: id, type: type),
            data: ["roomId": .string(id), "username": .string(user), "action": .string(action.rawValue), "userCount": .int(userCount)]
        )
    }

    /// `pusher_internal:member_added` / `member_removed` for a presence channel's subscribers; `user_info` is
    /// `userInfo`, by default `{"username": <user>}`.
    public static func memberEvent(channel: String, user: String, action: PresenceAction, userInfo: JSONValue? = nil) -> BroadcastEvent {
        if action == .joined {
            return BroadcastEvent(
                .memberAdded, channel: channel,
                data: ["user_id": .string(user), "user_info": userInfo ?? ["username": .string(user)]]
            )
        }
        return BroadcastEvent(.memberRemoved, channel: channel, data: ["user_id": .string(user)])
    }

    // MARK: - Messages

    /// Posts a message (content already trimmed and checked): private rooms members only, rate limited per user.
    /// Stored and sent HTML-escaped, as ryOS does (``HTMLText``).
    public func postMessage(room id: String, user: String, content: String) async throws -> ChatMessage {
        let room = try await self.room(id, viewer: user)
        let decision = try await messageLimiter.check(user)
        guard decision.allowed else { throw DomainError.rateLimited(decision) }
        let message = try await history.append(room: id, username: user, content: HTMLText.escape(content))
        try? await users.touch(user)
        await broadcaster.publish(messageEvents(room: room, message: message))
        await noteUnseen(room: room, message: message)
        return message
    }

    /// A private room's members who do not see `message` get a `message_unseen` notice after the grace.
    public func noteUnseen(room: Room, message: ChatMessage) async {
        guard let unseen, room.type == .private, let members = room.members else { return }
        await unseen.posted(room: room.id, message: message, members: members)
    }

    /// The `room-message` events for a message: the room's channel, and for private rooms each member's channel.
    public func messageEvents(room: Room, message: ChatMessage) -> [BroadcastEvent] {
        let data: JSONValue = ["roomId": .string(room.id), "message": message.json]
        var events = [BroadcastEvent(.roomMessage, channel: room.channel, data: data)]
        if room.type == .private {
            events += room.listChannels.map { BroadcastEvent(.roomMessage, channel: $0, data: data) }
        }
        return events
    }

    /// Deletes a message (admins only) and tells the room: `message-deleted {roomId, messageId}` on its channel, and
    /// for private rooms on each member's list channel.
    public func deleteMessage(room id: String, message messageID: String, by user: String) async throws {
        guard isAdmin(user) else { throw DomainError.forbidden("Forbidden - admin required") }
        guard !Validation.isSupportRoomID(id) else { throw Self.supportRoomRefusal }
        guard let room = try await rooms.get(id) else { throw DomainError.roomNotFound }
        guard try await history.delete(room: id, id: messageID) else { throw DomainError.notFound("Message not found") }
        let data: JSONValue = ["roomId": .string(id), "messageId": .string(messageID)]
        var events = [BroadcastEvent(.messageDeleted, channel: room.channel, data: data)]
        if room.type == .private {
            events += room.listChannels.map { BroadcastEvent(.messageDeleted, channel: $0, data: data) }
        }
        await broadcaster.publish(events)
    }

    /// Tells a room that `user` is typing (`user-typing {username, isTyping}` on its channel): members only for
    /// private rooms, limited per user.
    public func typing(room id: String, user: String, isTyping: Bool) async throws {
        let room = try await self.room(id, viewer: user, forbidden: "Forbidden - not a room member")
        try await limit(typingLimiter, user)
        await broadcaster.publish([BroadcastEvent(
            .userTyping, channel: room.channel, data: ["username": .string(user), "isTyping": .bool(isTyping)]
        )])
    }

    /// The newest `limit` messages of each room `viewer` may read, as ryOS's bulk read answers: rooms that do not
    /// exist or are private to others are listed as invalid.
    public func newestMessages(rooms ids: [String], viewer: String?, limit: Int) async throws
        -> (messages: [String: [ChatMessage]], valid: [String], invalid: [String]) {
        var readable: [String] = [], invalid: [String] = []
        let found = Dictionary(try await rooms.get(ids.filter { !Validation.isSupportRoomID($0) }).map { ($0.id, $0) }) { a, _ in a }
        for id in ids {
            guard let room = found[id], room.type == .public || (viewer.map { room.members?.contains($0) == true } ?? false) else {
                invalid.append(id)
                continue
            }
            readable.append(id)
        }
        let history = self.history
        let messages = try await withThrowingTaskGroup(of: (String, [ChatMessage]).self) { group in
            for id in readable { group.addTask { (id, try await history.newest(room: id, count: limit, before: nil)) } }
            var all: [String: [ChatMessage]] = [:]
            for try await (id, list) in group { all[id] = list }
            return all
        }
        return (messages, readable, invalid)
    }

    /// Messages newest first, older than `before`.
    public func messages(room id: String, viewer: String?, limit: Int, before: String?) async throws -> [ChatMessage] {
        _ = try await room(id, viewer: viewer)
        return try await history.newest(room: id, count: limit, before: before)
    }
}
