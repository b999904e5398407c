/// Presence held by sockets (Pusher presence channels): each socket of a user is an entry refreshed by its worker, and
/// the user stays present in the room while one of them lives. A dead worker's sockets lapse, and the user's presence
/// with them (``PresenceSweeper`` announces it).
public protocol SocketPresenceStorage: Sendable {
    /// A socket of `user` joins `room`. `openingChannel` names the presence channel of a room that is not a chat room:
    /// that room is created on first use. Also records the presence for the sweeper. `state` replaces the member's
    /// state (`nil` keeps it). With `maxMembers`, a user not present yet is refused when the room has that many
    /// present already, in the same step as the join (``PresenceChannelFull``; nothing of the join is left).
    func attachSocket(
        _ socket: String, user: String, room: String, openingChannel: String?, ttl: Duration, state: JSONValue?, maxMembers: Int?
    ) async throws -> PresenceJoin
    /// A socket leaves `room`. Returns the user's leave when it was their last socket there, `nil` otherwise.
    func detachSocket(_ socket: String, user: String, room: String) async throws -> PresenceLeave?
    /// Refreshes sockets and their users' presence in one round trip, only sockets still recorded and live: a socket
    /// whose entry is gone (it left meanwhile) or lapsed is not written back. Returns the positions in `entries` whose
    /// socket entry or presence was missing or lapsed (swept, removed by an access change, or left); the caller
    /// attaches again those it still holds.
    func refreshSockets(_ entries: [SocketEntry], ttl: Duration) async throws -> [Int]
}

extension SocketPresenceStorage {
    /// A socket of `user` joins `room`, keeping the member's state, with no member cap.
    public func attachSocket(_ socket: String, user: String, room: String, openingChannel: String?, ttl: Duration) async throws -> PresenceJoin {
        try await attachSocket(socket, user: user, room: room, openingChannel: openingChannel, ttl: ttl, state: nil, maxMembers: nil)
    }
}

/// A new member refused by a room that has its cap of present members (an app's presence channel at
/// `PUSHER_MAX_PRESENCE_MEMBERS`).
public struct PresenceChannelFull: Error, Equatable {
    public init() {}
}

/// One socket of one user in one room.
public struct SocketEntry: Sendable, Hashable {
    public var room: String
    public var user: String
    public var socket: String

    public init(room: String, user: String, socket: String) {
        self.room = room
        self.user = user
        self.socket = socket
    }
}
