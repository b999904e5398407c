/// The sweeper's work list: every presence with its expiry, so expired members can be found and claimed, each
/// exactly once across workers.
public protocol ExpiryStorage: Sendable {
    /// Up to `limit` entries (`<room>:<user>`) whose expiry has passed, oldest first, and the store's clock now (ms).
    func due(limit: Int) async throws -> (now: Int64, entries: [String])
    /// Claims the expired members of each room (a member is claimed by one caller only) and returns, per room,
    /// those claimed, how many are still present and the room's metadata; `nil` for a room that failed.
    func claimExpired(rooms: [String]) async throws -> [ExpiredClaim?]
    /// Drops handled entries from the work list, unless refreshed after `now`.
    func acknowledge(_ entries: [String], now: Int64) async throws
}

/// Members of one room whose presence expired, claimed by one sweeper.
public struct ExpiredClaim: Sendable, Equatable {
    public var users: [String]
    public var userCount: Int
    public var meta: [String: String]

    public init(users: [String], userCount: Int, meta: [String: String]) {
        self.users = users
        self.userCount = userCount
        self.meta = meta
    }
}
