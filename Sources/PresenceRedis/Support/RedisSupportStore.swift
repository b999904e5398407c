import PresenceCore
import Redis

/// ``SupportStorage`` in Redis: an agent flag per user (`user:{<name>}:agent`, in the user's slot, read by every access
/// check) and the admin listing `support:agents`; ticket metadata in `room:{ticket_<id>}:meta`, snapshots in
/// `room:{ticket_<id>}:snapshot`, attendance in `room:{ticket_<id>}:attendance` (appended by the presence scripts and
/// `support_close.lua`, `lib/attendance.lua`); every change to a ticket is one Lua script over its hash tag.
public struct RedisSupportStore: SupportStorage {
    let redis: RedisClient
    /// The intervals a ticket's attendance keeps, newest (`SUPPORT_ATTENDANCE_LIMIT`): the close appends one per member.
    let attendanceLimit: Int

    public init(redis: RedisClient, attendanceLimit: Int = SupportSettings().attendanceLimit) {
        self.redis = redis
        self.attendanceLimit = attendanceLimit
    }

    public func isAgent(_ user: String) async throws -> Bool {
        try await redis.send(RedisCommand("EXISTS", RedisKeys.supportAgent(user))).int == 1
    }

    /// The flag first, then the listing: a failure in between leaves an agent the listing misses, which the next
    /// call (or the start-up repair) fixes, never a listed user without access.
    public func addAgent(_ user: String) async throws {
        try await redis.send(RedisCommand("SET", RedisKeys.supportAgent(user), "1"))
        try await redis.send(RedisCommand("SADD", RedisKeys.supportAgents, user))
    }

    /// The flag first (access ends at once), then the listing.
    public func removeAgent(_ user: String) async throws -> Bool {
        let removed = try await redis.send(RedisCommand("DEL", RedisKeys.supportAgent(user))).int == 1
        let listed = try await redis.send(RedisCommand("SREM", RedisKeys.supportAgents, user)).int == 1
        return removed || listed
    }

    /// Gives every agent of the listing its flag (the listing alone decided access in earlier versions). Safe to run
    /// on every start and on several workers at once.
    public func repairAgentFlags() async throws -> Int {
        let listed = try await agents()
        guard !listed.isEmpty else { return 0 }
        let replies = try await redis.pipeline(listed.map { RedisCommand("SET", RedisKeys.supportAgent($0), "1", "NX") })
        return replies.filter { $0 == .simpleString("OK") }.count
    }

    public func agents() async throws -> [String] {
        (try await redis.send(RedisCommand("SMEMBERS", RedisKeys.supportAgents)).array ?? []).compactMap(\.string).sorted()
    }

    public func ticket(_ room: String, user: String) async throws -> (meta: [String: String], isListedAgent: Bool) {
        let replies = try await redis.pipeline([
            RedisCommand("HGETALL", RedisKeys.roomMeta(room)),
            RedisCommand("EXISTS", RedisKeys.supportAgent(user)),
        ])
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
        return (replies[0].hashFields, replies[1].int == 1)
    }

    public func open(room: String, ticket: String, user: String, asCustomer: Bool, isAgent: Bool) async throws -> SupportRoom {
        let reply = try await redis.run([RedisScriptCall(
            Scripts.supportOpen, keys: [RedisKeys.roomMeta(room)],
            arguments: [room, ticket, user, asCustomer ? "customer" : "", isAgent ? "1" : "0"]
        )])[0]
        if let message = reply.errorMessage {
            if message.hasPrefix("FORBIDDEN") { throw DomainError.forbidden("Forbidden") }
            if message.hasPrefix("CLOSED") { throw DomainError.roomClosed }
            throw RedisError.server(message)
        }
        guard let v = reply.array, v.count == 2 else { throw RedisError.protocolError("unexpected support_open reply \(reply)") }
        return SupportRoom(meta: v[1].hashFields)
    }

    public func updateMetadata(room: String, ticket: String, user: String, fields: [(String, String)]) async throws -> (changed: Bool, room: SupportRoom) {
        let reply = try await redis.run(
            Scripts.supportMetadata, keys: [RedisKeys.roomMeta(room)],
            arguments: [room, ticket, user] + fields.flatMap { [$0.0, $0.1] }
        )
        guard let v = reply.array, v.count == 2, let changed = v[0].int else {
            throw RedisError.protocolError("unexpected support_metadata reply \(reply)")
        }
        return (changed == 1, SupportRoom(meta: v[1].hashFields))
    }

    public func close(room: String, by user: String, deleteHistory: Bool, deleteSnapshot: Bool) async throws -> (snapshot: String, present: [String]) {
        let reply = try await redis.run(
            Scripts.supportClose,
            keys: [RedisKeys.roomMeta(room), RedisKeys.roomMembers(room), RedisKeys.roomJoined(room),
                   RedisKeys.roomHistory(room), RedisKeys.roomSnapshot(room), RedisKeys.roomStates(room),
                   RedisKeys.roomPresencePrefix(room), RedisKeys.roomAttendance(room)],
            arguments: [user, deleteHistory ? "1" : "0", deleteSnapshot ? "1" : "0", String(attendanceLimit)]
        )
        if reply.isNull { throw DomainError.roomNotFound }
        if reply.string == "ALREADY" { throw DomainError.roomClosed }
        guard let v = reply.array, v.count == 2, let encoded = v[0].string else {
            throw RedisError.protocolError("unexpected support_close reply \(reply)")
        }
        return (encoded, (v[1].array ?? []).compactMap(\.string))
    }

    public func reopen(room: String) async throws -> (wasClosed: Bool, room: SupportRoom)? {
        let reply = try await redis.run(Scripts.supportReopen, keys: [RedisKeys.roomMeta(room)], arguments: [])
        guard let v = reply.array, v.count == 2, let was = v[0].int else { return nil }
        return (was == 1, SupportRoom(meta: v[1].hashFields))
    }

    public func snapshot(room: String) async throws -> String? {
        try await redis.send(RedisCommand("GET", RedisKeys.roomSnapshot(room))).string
    }

    /// `support_attendance.lua`: the list and the members present now, on Redis's clock, in one step.
    public func attendance(room: String) async throws -> [AttendanceInterval] {
        let reply = try await redis.run(
            Scripts.supportAttendance,
            keys: [RedisKeys.roomAttendance(room), RedisKeys.roomMembers(room), RedisKeys.roomJoined(room),
                   RedisKeys.roomStates(room)]
        )
        if let message = reply.errorMessage { throw RedisError.server(message) }
        guard let v = reply.array, v.count == 2, let ended = v[0].array, let present = v[1].array, present.count % 3 == 0 else {
            throw RedisError.protocolError("unexpected support_attendance reply \(reply)")
        }
        var intervals = ended.compactMap { entry in
            entry.string.flatMap { JSONValue.parse(Array($0.utf8)) }.flatMap(AttendanceInterval.init(json:))
        }
        for index in stride(from: 0, to: present.count, by: 3) {
            guard let user = present[index].string else { continue }
            let state = present[index + 2].string.flatMap { JSONValue.parse(Array($0.utf8)) } ?? [:]
            intervals.append(AttendanceInterval(
                user: user, role: state["role"]?.string ?? SupportMember.Role.customer.rawValue,
                from: present[index + 1].string.flatMap { Int64($0) } ?? present[index + 1].int64 ?? 0, to: nil, reason: nil
            ))
        }
        return intervals
    }
}
