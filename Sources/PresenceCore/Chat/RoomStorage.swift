/// Chat rooms: metadata, the access lists of private rooms, the registry of public rooms and each user's private
/// rooms. Knows storage, not permissions (``ChatService`` decides who may do what).
public protocol RoomStorage: Sendable {
    /// Creates a room unless it exists; returns the room and whether this call created it. Also (re)writes the
    /// room's index entries, so a retry repairs an index write lost before.
    func create(id: String, name: String, type: Room.Kind, createdBy: String, members: [String]) async throws -> (room: Room, created: Bool)
    /// The room with its current user count; `nil` when it does not exist (or is not a chat room).
    func get(_ id: String) async throws -> Room?
    /// Several rooms; missing ones are skipped.
    func get(_ ids: [String]) async throws -> [Room]
    /// Ids of the public rooms and of `user`'s private rooms.
    func listIDs(for user: String?) async throws -> [String]
    /// Deletes a room and everything in it; returns the room as it was, or `nil` when it did not exist.
    func delete(_ id: String) async throws -> Room?
    /// `user` leaves a private room for good (the room goes below two members); `nil` when it does not exist.
    func leavePrivate(_ id: String, user: String) async throws -> PrivateRoomLeave?
    /// Drops index entries of rooms that no longer exist.
    func forget(_ ids: [String], for user: String?) async throws
}

/// The result of leaving a private room.
public struct PrivateRoomLeave: Sendable {
    /// The room before the leave.
    public var before: Room
    /// Whether the room was deleted (fewer than two members left).
    public var deleted: Bool
    /// Users present after the leave.
    public var userCount: Int
    /// Whether the leaving user was present.
    public var wasPresent: Bool

    public init(before: Room, deleted: Bool, userCount: Int, wasPresent: Bool) {
        self.before = before
        self.deleted = deleted
        self.userCount = userCount
        self.wasPresent = wasPresent
    }
}
