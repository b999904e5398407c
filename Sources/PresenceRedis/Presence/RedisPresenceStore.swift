import PresenceCore
import Foundation
import Logging
import Metrics
import Redis

/// Who is in which room, in Redis, shared by every worker: the one presence store behind chat rooms, support rooms
/// and presence channels.
///
/// A user is present in a room while their entry in the sorted set `room:{id}:members` (scored by expiry, on Redis's
/// clock) lies in the future; the set counts and lists them in O(log N), and `room:{id}:joined` keeps join order. A
/// member's state (JSON) is kept in the hash `room:{id}:states` only when it is not `{}`. Each present member also has
/// a key `room:{id}:presence:<user>` whose native TTL ends at that same expiry (written and deleted by the same
/// scripts), so `redis-cli TTL` shows the time left and an abandoned presence expires on its own.
/// Every change is one Lua script over the room's hash tag, on Redis's clock. A join first registers its room with
/// ``PresenceSweeper``'s work list (`presence:rooms:{…}`), which announces members whose presence expired.
/// In a support room, the script that ends a member's presence also appends its interval to the ticket's attendance
/// (`room:{id}:attendance`, `lib/attendance.lua`), capped at ``attendanceLimit`` (``attendance(room:limit:)``).
public struct RedisPresenceStore: PresenceStorage {
    let redis: RedisClient
    let logger: Logger
    /// When the sweeper plans to check each room, so that a switch need not register its room every time.
    let plans: SweeperPlans
    /// On one Redis, a chat switch's events are published by the room scripts themselves, in the same step as the
    /// change; `false` (recoverable chat channels: their events go through the recovery script) and on a cluster, the
    /// caller publishes them.
    let announcesInScript: Bool
    /// The intervals a support room's attendance keeps, newest (`SUPPORT_ATTENDANCE_LIMIT`).
    let attendanceLimit: Int

    public init(
        redis: RedisClient, logger: Logger = Logger(label: "presence"), plans: SweeperPlans = SweeperPlans(),
        announcesInScript: Bool = true, attendanceLimit: Int = SupportSettings().attendanceLimit
    ) {
        self.redis = redis
        self.logger = logger
        self.plans = plans
        self.announcesInScript = announcesInScript
        self.attendanceLimit = attendanceLimit
    }

    // MARK: - Script calls (for pipelining several rooms in one round trip)

    /// What the scripts that end a presence get for a support room's attendance (`lib/attendance.lua`): the list's key
    /// (one more `KEYS[]` entry, the room's hash tag) and its cap. Other rooms keep none and get neither, so their calls
    /// name no key that never exists (a chat leave then runs on the source node of a migrating slot, as before).
    static func attendance(room: String, limit: Int) -> (keys: [String], limit: String) {
        Validation.isSupportRoomID(room) ? ([RedisKeys.roomAttendance(room)], String(limit)) : ([], "")
    }

    /// `announce`: the script publishes a new member's chat events itself (``announcement(room:user:action:)``);
    /// `plannedCheck`: the sweeper's plan for the room when it is not registered in the same pipeline; `publicOnly`:
    /// refuse a room that is not public; `maxMembers`: refuse a new member when that many are present
    /// (``PresenceChannelFull``).
    func joinCall(
        room: String, user: String, ttl: Duration, state: JSONValue?, announce: Bool = false, plannedCheck: Int64? = nil,
        publicOnly: Bool = false, maxMembers: Int? = nil
    ) -> RedisScriptCall {
        let attendance = Self.attendance(room: room, limit: attendanceLimit)
        var arguments = [user, String(ttl.milliseconds), state?.serialized ?? ""]
        if announce || plannedCheck != nil || publicOnly || maxMembers != nil || !attendance.keys.isEmpty {
            arguments += [
                plannedCheck.map(String.init) ?? "", publicOnly ? "public" : "", maxMembers.map(String.init) ?? "",
                attendance.limit,
            ]
        }
        if announce { arguments += Self.announcement(room: room, user: user, action: .joined) }
        return RedisScriptCall(
            Scripts.presenceJoin,
            keys: [RedisKeys.roomMeta(room), RedisKeys.roomMembers(room), RedisKeys.roomJoined(room),
                   RedisKeys.roomStates(room), RedisKeys.roomPresence(room, user), RedisKeys.roomUnseen(room)] + attendance.keys,
            arguments: arguments
        )
    }

    /// `announce`: the script publishes the chat events of a departure itself (``announcement(room:user:action:)``).
    func leaveCall(room: String, user: String, announce: Bool = false) -> RedisScriptCall {
        let attendance = Self.attendance(room: room, limit: attendanceLimit)
        return RedisScriptCall(
            Scripts.presenceLeave,
            keys: [RedisKeys.roomMeta(room), RedisKeys.roomMembers(room), RedisKeys.roomJoined(room),
                   RedisKeys.roomStates(room), RedisKeys.roomPresence(room, user)] + attendance.keys,
            arguments: [user, attendance.limit] + (announce ? Self.announcement(room: room, user: user, action: .left) : [])
        )
    }

    /// The events a room script publishes in the same step as the change (`lib/announce.lua`), as the worker builds
    /// them (``ChatService/presenceUpdate(room:type:user:action:userCount:)``, ``ChatService/memberEvent(channel:user:action:userInfo:)``):
    /// each one's Redis channel, then its text. `presence-update` comes twice, for a public and a private room (the
    /// script knows the type), its count as `%d` for Lua's `string.format`, every other `%` doubled.
    static func announcement(room: String, user: String, action: PresenceAction) -> [String] {
        var arguments: [String] = []
        for type in [Room.Kind.public, .private] {
            let update = ChatService.presenceUpdate(room: room, type: type, user: user, action: action, userCount: countMark)
            arguments += [RedisKeys.broadcastChannel(update.channel), countTemplate(update.payload)]
        }
        let member = ChatService.memberEvent(channel: Room.presenceChannel(id: room), user: user, action: action)
        return arguments + [RedisKeys.broadcastChannel(member.channel), member.payload]
    }

    /// The count an event is built with before the script knows it, and found again by ``countTemplate(_:)``.
    static let countMark = -1_000_000_007

    /// `payload` as a `string.format` pattern: `%` doubled, and the count (``countMark``) as `%d`. `"userCount":`
    /// unescaped can only be the key (a quote inside a JSON string is `\"`).
    static func countTemplate(_ payload: String) -> String {
        let marked = "\"userCount\":\(countMark)"
        let escaped = payload.replacingOccurrences(of: "%", with: "%%")
        precondition(escaped.components(separatedBy: marked).count == 2, "one count in \(payload)")
        return escaped.replacingOccurrences(of: marked, with: "\"userCount\":%d")
    }

    /// `presence_refresh.lua`: pushes a present member's expiry (and their key's TTL) back; `state` replaces theirs.
    static func refreshCall(room: String, user: String, ttl: Duration, state: JSONValue?) -> RedisScriptCall {
        RedisScriptCall(
            Scripts.presenceRefresh,
            keys: [RedisKeys.roomMembers(room), RedisKeys.roomStates(room), RedisKeys.roomJoined(room),
                   RedisKeys.roomPresence(room, user)],
            arguments: [user, String(ttl.milliseconds), state?.serialized ?? ""]
        )
    }

    /// Runs `calls` after registering `room` with the sweeper (``RedisExpiryStore``), so that a member the calls add
    /// is never in a room the sweeper does not know, whatever happens to this worker in between. On one Redis both go
    /// in one pipeline, which Redis runs in order; on a cluster the registration's node may differ, so it is awaited
    /// first. Returns the replies to `calls`.
    func runRegistered(room: String, ttl: Duration, _ calls: [RedisScriptCall]) async throws -> [RESPValue] {
        let registration = RedisExpiryStore.registerCall(room: room, ttl: ttl)
        let sentAt = ContinuousClock.now
        if redis.isCluster {
            try remember(room: room, registration: try await redis.run([registration])[0], sentAt: sentAt)
            return try await redis.run(calls)
        }
        let replies = try await redis.run([registration] + calls)
        try remember(room: room, registration: replies[0], sentAt: sentAt)
        return Array(replies.dropFirst())
    }

    /// Reads `presence_register.lua`'s reply `{check, now}` into ``plans``; throws its error.
    private func remember(room: String, registration reply: RESPValue, sentAt: ContinuousClock.Instant) throws {
        if let message = reply.errorMessage { throw RedisError.server(message) }
        guard let v = reply.array, v.count == 2, let check = v[0].int, let now = v[1].int else { return }
        plans.record(room: room, check: Int64(check), redisNow: Int64(now), sentAt: sentAt)
    }

    // MARK: - Operations

    /// Enters `room` (or refreshes presence there). `state` replaces the member's state; `nil` keeps it.
    /// Throws ``DomainError/roomNotFound`` when the room does not exist.
    public func join(room: String, user: String, ttl: Duration, state: JSONValue?) async throws -> PresenceJoin {
        let reply = try await runRegistered(room: room, ttl: ttl, [joinCall(room: room, user: user, ttl: ttl, state: state)])[0]
        return try Self.parseJoin(reply, user: user, ttl: ttl)
    }

    static func parseJoin(_ reply: RESPValue, user: String, ttl: Duration) throws -> PresenceJoin {
        if let message = reply.errorMessage {
            if message.hasPrefix("NOROOM") { throw DomainError.roomNotFound }
            if message.hasPrefix("CLOSED") { throw DomainError.roomClosed }
            if message.hasPrefix("NOTPUBLIC") { throw DomainError.forbidden("Forbidden - not a room member") }
            if message.hasPrefix("FULL") { throw PresenceChannelFull() }
            throw RedisError.server(message)
        }
        guard let v = reply.array, v.count == 9, let isNew = v[0].int, let count = v[1].int,
              let joinedAt = v[2].int, let expiresAt = v[3].int, let state = v[5].string, let old = v[7].string else {
            throw RedisError.protocolError("unexpected join reply \(reply)")
        }
        // A member present in a room has seen it: their pending `message_unseen` notice was dropped (unseen_post.lua).
        if v[8].int == 1 { Counter(label: UnseenMessages.suppressedCounter).increment() }
        let member = PresenceMember(
            username: user, joinedAt: Int64(joinedAt), expiresAt: Int64(expiresAt),
            lastSeen: Int64(expiresAt) - ttl.milliseconds, state: JSONValue.parse(Array(state.utf8)) ?? [:]
        )
        return PresenceJoin(
            isNew: isNew == 1, userCount: count, member: member,
            previousState: JSONValue.parse(Array(old.utf8)) ?? [:], meta: v[6].hashFields
        )
    }

    /// Leaves `room` at once. Not being there is not an error (``PresenceLeave/wasPresent`` is `false`).
    public func leave(room: String, user: String) async throws -> PresenceLeave {
        try Self.parseLeave(try await redis.run([leaveCall(room: room, user: user)])[0])
    }

    static func parseLeave(_ reply: RESPValue) throws -> PresenceLeave {
        if let message = reply.errorMessage { throw RedisError.server(message) }
        guard let v = reply.array, v.count == 4, let removed = v[0].int, let count = v[1].int, let state = v[2].string else {
            throw RedisError.protocolError("unexpected leave reply \(reply)")
        }
        return PresenceLeave(
            wasPresent: removed == 1, userCount: count,
            state: JSONValue.parse(Array(state.utf8)) ?? [:], meta: v[3].hashFields
        )
    }

    /// Refreshes a present member's TTL, optionally replacing its state. `nil` when the user is not present.
    public func refresh(room: String, user: String, ttl: Duration, state: JSONValue?) async throws -> PresenceRefresh? {
        let call = Self.refreshCall(room: room, user: user, ttl: ttl, state: state)
        let reply = try await redis.run(call.script, keys: call.keys, arguments: call.arguments)
        if reply.isNull { return nil }
        guard let v = reply.array, v.count == 5, let expiresAt = v[0].int, let joinedAt = v[2].int,
              let old = v[3].string, let new = v[4].string else {
            throw RedisError.protocolError("unexpected refresh reply \(reply)")
        }
        let member = PresenceMember(
            username: user, joinedAt: Int64(joinedAt), expiresAt: Int64(expiresAt),
            lastSeen: Int64(expiresAt) - ttl.milliseconds, state: JSONValue.parse(Array(new.utf8)) ?? [:]
        )
        return PresenceRefresh(member: member, previousState: JSONValue.parse(Array(old.utf8)) ?? [:])
    }

    /// Users present in `room` now, in join order, one page at a time. The cursor is opaque.
    public func presentUsers(room: String, ttl: Duration) async throws -> [PresentUser] {
        // Redis's clock on the room's node, then one range query over the members (scored by expiry) from there.
        let key = RedisKeys.roomMembers(room)
        let clock = try await redis.run(Scripts.roomClock, keys: [key])
        guard let now = clock.int64 else { throw RedisError.protocolError("unexpected room_clock reply \(clock)") }
        let reply = try await redis.send(RedisCommand("ZRANGEBYSCORE", key, "(\(now)", "+inf", "WITHSCORES"))
        if let message = reply.errorMessage { throw RedisError.server(message) }
        guard let items = reply.array, items.count % 2 == 0 else {
            throw RedisError.protocolError("unexpected present users reply \(reply)")
        }
        var users: [PresentUser] = []
        users.reserveCapacity(items.count / 2)
        let ttl = ttl.milliseconds
        for index in stride(from: 0, to: items.count, by: 2) {
            guard let user = items[index].string,
                  let expiry = items[index + 1].int64 ?? items[index + 1].string.flatMap(Double.init).map(Int64.init) else { continue }
            users.append(PresentUser(username: user, lastSeen: expiry - ttl))
        }
        return users
    }

    public func present(room: String, among users: [String]) async throws -> [String] {
        guard !users.isEmpty else { return [] }
        let reply = try await redis.run(Scripts.presencePresent, keys: [RedisKeys.roomMembers(room)], arguments: users)
        if let message = reply.errorMessage { throw RedisError.server(message) }
        return (reply.array ?? []).compactMap(\.string)
    }

    public func presentCount(room: String) async throws -> Int {
        try await redis.run(Scripts.presenceCount, keys: [RedisKeys.roomMembers(room)]).int ?? 0
    }

    public func members(room: String, ttl: Duration, limit: Int, cursor: String?) async throws -> (members: [PresenceMember], nextCursor: String?) {
        var cursorAt = ""
        var cursorUser = ""
        if let cursor {
            guard let decoded = Self.decodeCursor(cursor) else { throw DomainError.invalid("Invalid cursor") }
            (cursorAt, cursorUser) = decoded
        }
        let reply = try await redis.run(
            Scripts.presenceList,
            keys: [RedisKeys.roomMembers(room), RedisKeys.roomJoined(room)],
            arguments: [cursorAt, cursorUser, String(limit)]
        )
        guard let v = reply.array, v.count == 4, let lastAt = v[1].string, let lastUser = v[2].string,
              let page = v[3].array else {
            throw RedisError.protocolError("unexpected list reply \(reply)")
        }
        var members: [PresenceMember] = []
        var index = 0
        while index + 2 < page.count {
            guard let user = page[index].string, let joinedAt = page[index + 1].int, let expiresAt = page[index + 2].int else {
                break
            }
            members.append(PresenceMember(
                username: user, joinedAt: Int64(joinedAt), expiresAt: Int64(expiresAt),
                lastSeen: Int64(expiresAt) - ttl.milliseconds, state: [:]
            ))
            index += 3
        }
        let next = lastAt.isEmpty ? nil : Self.encodeCursor(at: lastAt, user: lastUser)
        return (members, next)
    }

    /// The states of `users` in `room`, `{}` for those without one. (A member who expired keeps their state until the
    /// sweeper claims them: ask for present users.)
    public func states(room: String, users: [String]) async throws -> [JSONValue] {
        guard !users.isEmpty else { return [] }
        var command = RedisCommand("HMGET", RedisKeys.roomStates(room))
        for user in users { command.append(user) }
        let reply = try await redis.send(command)
        return (reply.array ?? []).map { value in value.string.flatMap { JSONValue.parse(Array($0.utf8)) } ?? [:] }
    }

    // MARK: - Chat switches and the user's present rooms

    public func switchRooms(
        user: String, previous: String?, next: String?, ttl: Duration, nextIsPublic: Bool, limit: SlidingWindowLimiter?
    ) async throws -> PresenceSwitch {
        // With a limit: the limit and the user's own bookkeeping (present-rooms set, lastActive) in one script first
        // (their keys share the user's hash tag), then leave and join in one round trip. Without: leave, join and the
        // bookkeeping in one round trip. On one Redis the room scripts publish their own events (PUBLISH from a
        // script, of the texts ChatService builds: announcement(room:user:action:)), in the same step as the change; on
        // a cluster a channel's SPUBLISH belongs to the channel's slot, so the caller publishes the same events.
        if let limit {
            let reply = try await redis.run(
                Scripts.userSwitchLimited,
                keys: [RedisKeys.user(user), RedisKeys.userPresentRooms(user), RedisKeys.rateLimit(limit.name, user)],
                arguments: [previous ?? "", next ?? "", String(limit.limit), String(limit.window.milliseconds), RandomID.make()]
            )
            let state = try RedisRateLimitStorage.state(reply, count: 5, script: "user_switch_limited")
            let decision = limit.fusedDecision(allowed: state.allowed, remaining: state.remaining, resetMilliseconds: state.resetMilliseconds)
            guard decision.allowed else { throw DomainError.rateLimited(decision) }
        }
        let announce = announcesInScript && !redis.isCluster
        let planned = next.flatMap { plans.plannedCheck(room: $0, ttl: ttl) }
        var calls: [RedisScriptCall] = []
        if let previous { calls.append(leaveCall(room: previous, user: user, announce: announce)) }
        if let next {
            calls.append(joinCall(room: next, user: user, ttl: ttl, state: nil, announce: announce, plannedCheck: planned, publicOnly: nextIsPublic))
        }
        if limit == nil {
            calls.append(RedisScriptCall(
                Scripts.userSwitch, keys: [RedisKeys.user(user), RedisKeys.userPresentRooms(user)],
                arguments: [previous ?? "", next ?? ""]
            ))
        }
        var replies: [RESPValue]
        if let next, planned == nil { replies = try await runRegistered(room: next, ttl: ttl, calls) } else { replies = try await redis.run(calls) }
        let joinIndex = previous == nil ? 0 : 1
        if let next, replies[joinIndex].errorMessage?.hasPrefix("STALE") == true {
            // The sweeper's plan ran out meanwhile: register, then join (nothing of the join happened).
            plans.forget(next)
            let join = joinCall(room: next, user: user, ttl: ttl, state: nil, announce: announce, publicOnly: nextIsPublic)
            replies[joinIndex] = try await runRegistered(room: next, ttl: ttl, [join])[0]
        }
        let left = try previous.map { _ in try Self.parseLeave(replies[0]) }
        let joined: Result<PresenceJoin, any Error>? = next.map { _ in
            Result { try Self.parseJoin(replies[joinIndex], user: user, ttl: ttl) }
        }
        return PresenceSwitch(left: left, joined: joined, announced: announce)
    }

    public func presentRooms(of user: String) async throws -> [String] {
        (try await redis.send(RedisCommand("SMEMBERS", RedisKeys.userPresentRooms(user))).array ?? []).compactMap(\.string)
    }

    public func forgetPresentRooms(_ rooms: [String], of user: String) async throws {
        guard !rooms.isEmpty else { return }
        try await redis.send(RedisCommand("SREM", [RedisKeys.userPresentRooms(user)] + rooms))
    }

    public func forgetPresentRoom(_ room: String, of users: [String]) async throws {
        guard !users.isEmpty else { return }
        let replies = try await redis.pipeline(users.map { RedisCommand("SREM", RedisKeys.userPresentRooms($0), room) })
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
    }

    static func encodeCursor(at: String, user: String) -> String {
        Data("\(at):\(user)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decodeCursor(_ cursor: String) -> (String, String)? {
        var base64 = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard cursor.count <= 200, let data = Data(base64Encoded: base64),
              let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":") else { return nil }
        let at = String(text[..<colon])
        let user = String(text[text.index(after: colon)...])
        guard Int64(at) != nil, !user.isEmpty else { return nil }
        return (at, user)
    }
}
