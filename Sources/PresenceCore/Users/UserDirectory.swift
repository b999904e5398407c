import HummingbirdBcrypt
import Redis

/// Registered users: their records (`user:{name}`), the prefix index for search (`users:prefix:<xy>`, one sorted
/// set per 2-character prefix, all scores 0, queried with ZRANGEBYLEX) and `lastActive`.
public struct UserDirectory: Sendable {
    /// What search returns of a user: nothing else ever leaves through it.
    public struct Summary: Sendable, Equatable, Codable {
        public var username: String
        public var lastActive: Int64
    }

    let redis: RedisClient
    let hasher: PasswordHasher
    /// A real hash of nothing in particular, verified against for unknown users so that timing does not tell them
    /// apart from wrong passwords.
    let decoyHash: String

    public init(redis: RedisClient, hasher: PasswordHasher) {
        self.redis = redis
        self.hasher = hasher
        self.decoyHash = Bcrypt.hash("decoy-\(UInt64.random(in: 0 ... .max))", cost: hasher.cost)
    }

    /// Registers `username` (already validated and lowercased). Throws ``DomainError/conflict(_:)`` when taken.
    public func register(username: String, password: String) async throws {
        let hash = try await hasher.hash(password)
        try await register(username: username, passwordHash: hash)
    }

    /// Stores a user with an already computed password hash (also used to seed many users quickly).
    public func register(username: String, passwordHash: String) async throws {
        let replies = try await redis.run([
            RedisScriptCall(Scripts.userRegister, keys: [RedisKeys.user(username)], arguments: [username, passwordHash]),
        ])
        guard let created = replies[0].int else { throw RedisError.protocolError("unexpected register reply \(replies[0])") }
        // The search index is a second key (another hash slot): written even when the user exists, so a failure
        // between the two steps is repaired by the next attempt instead of leaving a user nobody can find.
        try await redis.send(RedisCommand("ZADD", RedisKeys.usersPrefix(username.prefix(2)), "0", username))
        guard created != 0 else { throw DomainError.conflict("Username taken") }
    }

    /// `true` when the password matches the user's; `false` for an unknown user (after the same work, so timing
    /// does not tell unknown users from wrong passwords).
    public func verify(username: String, password: String) async throws -> Bool {
        let stored = try await redis.send(RedisCommand("HGET", RedisKeys.user(username), "passwordHash")).string
        let hash = stored ?? decoyHash
        let matches = try await hasher.verify(password, hash: hash)
        return stored != nil && matches
    }

    /// Whether `user` has signed in from `address` before (within 90 days).
    public func isKnownAddress(_ address: String, of user: String) async throws -> Bool {
        try await redis.send(RedisCommand("SISMEMBER", RedisKeys.userLoginAddresses(user), address)).int == 1
    }

    /// Remembers a successful sign-in of `user` from `address` (the 50 most recent kinds of address, roughly).
    public func rememberAddress(_ address: String, of user: String) async throws {
        let key = RedisKeys.userLoginAddresses(user)
        let replies = try await redis.pipeline([
            RedisCommand("SADD", key, address), RedisCommand("EXPIRE", key, String(90 * 86400)), RedisCommand("SCARD", key),
        ])
        if let count = replies[2].int, count > 50 {
            _ = try await redis.pipeline([RedisCommand("SPOP", key, String(count - 50)), RedisCommand("SADD", key, address)])
        }
    }

    /// Which of `usernames` are registered.
    public func existing(_ usernames: [String]) async throws -> [Bool] {
        guard !usernames.isEmpty else { return [] }
        let replies = try await redis.pipeline(usernames.map { RedisCommand("EXISTS", RedisKeys.user($0)) })
        return replies.map { $0.int == 1 }
    }

    /// Sets `lastActive` to Redis's clock now (only for existing users).
    public func touch(_ username: String) async throws {
        try await redis.run(Scripts.userTouch, keys: [RedisKeys.user(username)], arguments: [])
    }

    /// Users whose name starts with `prefix` (already lowercased, ≥ 2 characters), in alphabetical order.
    public func search(prefix: String, limit: Int) async throws -> [Summary] {
        let key = RedisKeys.usersPrefix(prefix.prefix(2))
        // "[" + prefix up to "[" + prefix + 0xFF: every member that starts with prefix.
        var command = RedisCommand("ZRANGEBYLEX", key, "[" + prefix)
        command.append(bytes: Array(("[" + prefix).utf8) + [0xff])
        command.append("LIMIT")
        command.append("0")
        command.append(limit)
        let names = (try await redis.send(command).array ?? []).compactMap(\.string)
        guard !names.isEmpty else { return [] }
        let actives = try await redis.pipeline(names.map { RedisCommand("HGET", RedisKeys.user($0), "lastActive") })
        return zip(names, actives).map { Summary(username: $0, lastActive: Int64($1.int ?? 0)) }
    }
}
