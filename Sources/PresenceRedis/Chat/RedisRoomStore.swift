import PresenceCore
import Foundation
import Redis

/// Chat rooms in Redis (``RoomStorage``): metadata, access lists of private rooms, the registry of public rooms (spread
/// over ``RedisKeys/spreadBuckets`` keys) and each user's
/// private rooms. Knows storage, not permissions (``ChatService`` decides who may do what).
public struct RedisRoomStore: RoomStorage {
    let redis: RedisClient

    public init(redis: RedisClient) {
        self.redis = redis
    }

    /// Creates a room unless it exists; returns the room and whether this call created it.
    public func create(id: String, name: String, type: Room.Kind, createdBy: String, members: [String]) async throws -> (room: Room, created: Bool) {
        let call = RedisScriptCall(
            Scripts.roomCreate,
            keys: [RedisKeys.roomMeta(id), RedisKeys.roomAccess(id)],
            arguments: [id, name, type.rawValue, createdBy] + (type == .private ? members : [])
        )
        var indexes: [RedisCommand] = []
        if type == .public {
            indexes.append(RedisCommand("SADD", RedisKeys.publicRooms(of: id), id))
        } else {
            indexes += members.map { RedisCommand("SADD", RedisKeys.userRooms($0), id) }
        }
        let reply = try await redis.run([call])[0]
        guard let v = reply.array, v.count == 2, let created = v[0].int, let createdAt = v[1].int else {
            throw RedisError.protocolError("unexpected room_create reply \(reply)")
        }
        // The indexes are other keys (other hash slots), written after the room: a failure in between throws, and
        // the next attempt (the caller's retry, or the default rooms at start-up) writes them again.
        try Self.check(try await redis.pipeline(indexes))
        if created == 1 {
            let room = Room(
                id: id, name: name, type: type, createdAt: Int64(createdAt), createdBy: createdBy, userCount: 0,
                members: type == .private ? members.sorted() : nil
            )
            return (room, true)
        }
        guard let existing = try await get(id) else { throw DomainError.roomNotFound }
        return (existing, false)
    }

    /// Throws the first error reply of a pipeline.
    static func check(_ replies: [RESPValue]) throws {
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
    }

    /// Drops index entries of rooms that no longer exist (a deletion whose index cleanup failed).
    public func forget(_ ids: [String], for user: String?) async throws {
        guard !ids.isEmpty else { return }
        var commands = ids.map { RedisCommand("SREM", RedisKeys.publicRooms(of: $0), $0) }
        if let user { commands.append(RedisCommand("SREM", [RedisKeys.userRooms(user)] + ids)) }
        try Self.check(try await redis.pipeline(commands))
    }

    func getCall(_ id: String) -> RedisScriptCall {
        RedisScriptCall(
            Scripts.roomGet,
            keys: [RedisKeys.roomMeta(id), RedisKeys.roomMembers(id), RedisKeys.roomAccess(id)],
            arguments: []
        )
    }

    /// The room with its current user count; `nil` when it does not exist (or is not a chat room).
    public func get(_ id: String) async throws -> Room? {
        try Self.parseGet(try await redis.run([getCall(id)])[0])
    }

    /// Several rooms in one round trip; missing ones are skipped.
    public func get(_ ids: [String]) async throws -> [Room] {
        guard !ids.isEmpty else { return [] }
        return try await redis.run(ids.map(getCall)).compactMap { try Self.parseGet($0) }
    }

    static func parseGet(_ reply: RESPValue) throws -> Room? {
        if reply.isNull { return nil }
        if let message = reply.errorMessage { throw RedisError.server(message) }
        guard let v = reply.array, v.count == 3, let count = v[1].int else {
            throw RedisError.protocolError("unexpected room_get reply \(reply)")
        }
        return Room(meta: v[0].hashFields, userCount: count, members: (v[2].array ?? []).compactMap(\.string))
    }

    /// Ids of the public rooms and of `user`'s private rooms.
    public func listIDs(for user: String?) async throws -> [String] {
        var commands = (0..<RedisKeys.spreadBuckets).map { RedisCommand("SMEMBERS", RedisKeys.publicRooms(bucket: $0)) }
        if let user { commands.append(RedisCommand("SMEMBERS", RedisKeys.userRooms(user))) }
        let replies = try await redis.pipeline(commands)
        return replies.flatMap { ($0.array ?? []).compactMap(\.string) }
    }

    /// Moves the one public-room set of earlier versions (`rooms:public`) into the buckets, then deletes it. Safe to run
    /// on every start and on several workers at once.
    public func migrateLegacyPublicRooms() async throws -> Int {
        let ids = (try await redis.send(RedisCommand("SMEMBERS", RedisKeys.legacyPublicRooms)).array ?? []).compactMap(\.string)
        guard !ids.isEmpty else { return 0 }
        try Self.check(try await redis.pipeline(ids.map { RedisCommand("SADD", RedisKeys.publicRooms(of: $0), $0) }))
        try await redis.send(RedisCommand("SREM", [RedisKeys.legacyPublicRooms] + ids))
        return ids.count
    }

    /// The keys of room `id` that `room_delete` and `room_leave_private` take (then `room_delete` the prefix of the
    /// members' presence keys, ``RedisKeys/roomPresencePrefix(_:)``; `room_leave_private` the user's presence key and
    /// that prefix).
    static func roomKeys(_ id: String) -> [String] {
        [RedisKeys.roomMeta(id), RedisKeys.roomMembers(id), RedisKeys.roomJoined(id), RedisKeys.roomAccess(id),
         RedisKeys.roomHistory(id), RedisKeys.roomStates(id)]
    }

    /// Deletes a room and everything in it; returns the room as it was, or `nil` when it did not exist.
    public func delete(_ id: String) async throws -> Room? {
        let reply = try await redis.run(Scripts.roomDelete, keys: Self.roomKeys(id) + [RedisKeys.roomPresencePrefix(id)], arguments: [])
        if reply.isNull { return nil }
        guard let v = reply.array, v.count == 2 else { throw RedisError.protocolError("unexpected room_delete reply \(reply)") }
        let access = (v[1].array ?? []).compactMap(\.string)
        let room = Room(meta: v[0].hashFields, userCount: 0, members: access)
        var cleanup = [RedisCommand("SREM", RedisKeys.publicRooms(of: id), id)]
        cleanup += access.map { RedisCommand("SREM", RedisKeys.userRooms($0), id) }
        // A failure here leaves index entries of a room that is gone: listings skip and drop them (forget).
        try Self.check(try await redis.pipeline(cleanup))
        return room
    }

    /// `user` leaves a private room for good. Returns the room before, whether it was deleted (fewer than two
    /// members left), the users present after, and whether `user` was present; `nil` when the room does not exist.
    public func leavePrivate(_ id: String, user: String) async throws -> PrivateRoomLeave? {
        let reply = try await redis.run(
            Scripts.roomLeavePrivate,
            keys: Self.roomKeys(id) + [RedisKeys.roomPresence(id, user), RedisKeys.roomPresencePrefix(id)], arguments: [user]
        )
        if reply.isNull { return nil }
        guard let v = reply.array, v.count == 5, let deleted = v[0].int, let count = v[3].int, let wasPresent = v[4].int,
              let room = Room(meta: v[1].hashFields, userCount: count, members: (v[2].array ?? []).compactMap(\.string))
        else {
            throw RedisError.protocolError("unexpected room_leave_private reply \(reply)")
        }
        var cleanup = [RedisCommand("SREM", RedisKeys.userRooms(user), id)]
        if deleted == 1 { cleanup += (room.members ?? []).map { RedisCommand("SREM", RedisKeys.userRooms($0), id) } }
        try Self.check(try await redis.pipeline(cleanup))
        return PrivateRoomLeave(before: room, deleted: deleted == 1, userCount: count, wasPresent: wasPresent == 1)
    }
}
