/// Registered users: records with a password hash and `lastActive`, the prefix index for search, and the addresses
/// each user signed in from.
public protocol UserStorage: Sendable {
    /// Creates the user unless the name is taken; returns whether it did. Also (re)writes the search index entry,
    /// so a retry repairs an index write lost before.
    func create(username: String, passwordHash: String) async throws -> Bool
    /// The stored password hash; `nil` for an unknown user.
    func passwordHash(of username: String) async throws -> String?
    /// Whether `user` signed in from `address` before (within 90 days).
    func isKnownAddress(_ address: String, of user: String) async throws -> Bool
    /// Remembers a sign-in of `user` from `address` (about the 50 most recent).
    func rememberAddress(_ address: String, of user: String) async throws
    /// Which of `usernames` are registered.
    func existing(_ usernames: [String]) async throws -> [Bool]
    /// Sets `lastActive` to now (existing users only).
    func touch(_ username: String) async throws
    /// Users whose name starts with `prefix`, in alphabetical order, at most `limit`.
    func search(prefix: String, limit: Int) async throws -> [UserSummary]
    /// Creates an admin account made by the bootstrap (`ADMIN_PASSWORD`), marked so in the same step; `false` when the
    /// name is taken.
    func createBootstrapAdmin(username: String, passwordHash: String) async throws -> Bool
    /// Whether `user`'s account was made by the admin bootstrap.
    func isBootstrapAdmin(_ user: String) async throws -> Bool
    /// Records the chat room the user's client shows (the last switch's target), for `ttl`; `nil` forgets it.
    func setCurrentRoom(_ room: String?, of user: String, ttl: Duration) async throws
    /// The chat room the user's client last switched to, if recorded and not lapsed.
    func currentRoom(of user: String) async throws -> String?
}

/// What search returns of a user: nothing else ever leaves through it.
public struct UserSummary: Sendable, Equatable, Codable {
    public var username: String
    public var lastActive: Int64

    public init(username: String, lastActive: Int64) {
        self.username = username
        self.lastActive = lastActive
    }
}
