/// Registered users: registration with a hashed password, sign-in checks, search and activity, over a
/// ``UserStorage``.
public struct UserDirectory: Sendable {
    let storage: any UserStorage
    let hasher: any PasswordHashing
    /// A real hash of nothing in particular, verified against for unknown users so that timing does not tell them
    /// apart from wrong passwords.
    let decoyHash: String

    public init(storage: any UserStorage, hasher: any PasswordHashing) {
        self.storage = storage
        self.hasher = hasher
        self.decoyHash = hasher.makeDecoyHash()
    }

    /// Registers `username` (already validated and lowercased). Throws ``DomainError/conflict(_:)`` when taken.
    public func register(username: String, password: String) async throws {
        let hash = try await hasher.hash(password)
        try await register(username: username, passwordHash: hash)
    }

    /// Stores a user with an already computed password hash (also used to seed many users quickly).
    public func register(username: String, passwordHash: String) async throws {
        guard try await storage.create(username: username, passwordHash: passwordHash) else {
            throw DomainError.conflict("Username taken")
        }
    }

    /// `true` when the password matches the user's; `false` for an unknown user (after the same work, so timing
    /// does not tell unknown users from wrong passwords).
    public func verify(username: String, password: String) async throws -> Bool {
        let stored = try await storage.passwordHash(of: username)
        let matches = try await hasher.verify(password, hash: stored ?? decoyHash)
        return stored != nil && matches
    }

    /// Whether `user` has signed in from `address` before (within 90 days).
    public func isKnownAddress(_ address: String, of user: String) async throws -> Bool {
        try await storage.isKnownAddress(address, of: user)
    }

    /// Remembers a successful sign-in of `user` from `address`.
    public func rememberAddress(_ address: String, of user: String) async throws {
        try await storage.rememberAddress(address, of: user)
    }

    /// Which of `usernames` are registered.
    public func existing(_ usernames: [String]) async throws -> [Bool] {
        try await storage.existing(usernames)
    }

    /// Sets `lastActive` to now (only for existing users).
    public func touch(_ username: String) async throws {
        try await storage.touch(username)
    }

    /// Users whose name starts with `prefix` (already lowercased, ≥ 2 characters), in alphabetical order.
    /// Creates an admin account from the bootstrap password and marks it so; `false` when the name exists already
    /// (whoever made it: see ``isBootstrapAdmin(_:)``).
    public func registerBootstrapAdmin(username: String, password: String) async throws -> Bool {
        try await storage.createBootstrapAdmin(username: username, passwordHash: try await hasher.hash(password))
    }

    /// Whether `user`'s account was made by the admin bootstrap.
    public func isBootstrapAdmin(_ user: String) async throws -> Bool {
        try await storage.isBootstrapAdmin(user)
    }

    /// Records (or with `nil` forgets) the chat room `user`'s client shows.
    public func setCurrentRoom(_ room: String?, of user: String, ttl: Duration) async throws {
        try await storage.setCurrentRoom(room, of: user, ttl: ttl)
    }

    /// The chat room `user`'s client last switched to, if recorded.
    public func currentRoom(of user: String) async throws -> String? {
        try await storage.currentRoom(of: user)
    }

    public func search(prefix: String, limit: Int) async throws -> [UserSummary] {
        try await storage.search(prefix: prefix, limit: limit)
    }
}
