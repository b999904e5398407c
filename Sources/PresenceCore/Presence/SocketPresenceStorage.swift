/// Presence held by sockets (Pusher presence channels): each socket of a user is an entry refreshed by its worker, and
/// the user stays present in the room while one of them lives. A dead worker's sockets lapse, and the user's presence
/// with them (``PresenceSweeper`` announces it).
public protocol SocketPresenceStorage: Sendable {
    /// A socket of `user` joins `room`. `openingChannel` names the presence channel of a room that is not a chat room:
    /// that room is created on first use. Also records the presence for the sweeper.
    func attachSocket(_ socket: String, user: String, room: String, openingChannel: String?, ttl: Duration) async throws -> PresenceJoin
    /// A socket leaves `room`. Returns the user's leave when it was their last socket there, `nil` otherwise.
    func detachSocket(_ socket: String, user: String, room: String) async throws -> PresenceLeave?
    /// Refreshes sockets and their users' presence in one round trip. Returns the positions in `entries` whose
    /// presence had lapsed meanwhile (swept, or removed by an access change).
    func refreshSockets(_ entries: [SocketEntry], ttl: Duration) async throws -> [Int]
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
