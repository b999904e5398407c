import PresenceCore
import Redis

/// ``UserStorage`` in Redis: records in `user:{name}` hashes, the prefix index for search in `users:prefix:<xy>`
/// (one sorted set per 2-character prefix, all scores 0, queried with ZRANGEBYLEX), known sign-in addresses in
/// `user:{name}:logins`.
public struct RedisUserStore: UserStorage {
    let redis: RedisClient

    public init(redis: RedisClient) {
        self.redis = redis
    }

    public func create(username: String, passwordHash: String) async throws -> Bool {
        try await create(username: username, passwordHash: passwordHash, mark: nil)
    }

    public func createBootstrapAdmin(username: String, passwordHash: String) async throws -> Bool {
        try await create(username: username, passwordHash: passwordHash, mark: "bootstrap")
    }

    private func create(username: String, passwordHash: String, mark: String?) async throws -> Bool {
        let replies = try await redis.run([
            RedisScriptCall(
                Scripts.userRegister, keys: [RedisKeys.user(username)], arguments: [username, passwordHash] + (mark.map { [$0] } ?? [])
            ),
        ])
        guard let created = replies[0].int else { throw RedisError.protocolError("unexpected register reply \(replies[0])") }
        // The search index is a second key (another hash slot): written even when the user exists, so a failure
        // between the two steps is repaired by the next attempt instead of leaving a user nobody can find.
        try await redis.send(RedisCommand("ZADD", RedisKeys.usersPrefix(username.prefix(2)), "0", username))
        return created != 0
    }

    public func passwordHash(of username: String) async throws -> String? {
        try await redis.send(RedisCommand("HGET", RedisKeys.user(username), "passwordHash")).string
    }

    public func isKnownAddress(_ address: String, of user: String) async throws -> Bool {
        try await redis.send(RedisCommand("SISMEMBER", RedisKeys.userLoginAddresses(user), address)).int == 1
    }

    public func rememberAddress(_ address: String, of user: String) async throws {
        let key = RedisKeys.userLoginAddresses(user)
        let replies = try await redis.pipeline([
            RedisCommand("SADD", key, address), RedisCommand("EXPIRE", key, String(90 * 86400)), RedisCommand("SCARD", key),
        ])
        if let count = replies[2].int, count > 50 {
            _ = try await redis.pipeline([RedisCommand("SPOP", key, String(count - 50)), RedisCommand("SADD", key, address)])
        }
    }

    public func existing(_ usernames: [String]) async throws -> [Bool] {
        guard !usernames.isEmpty else { return [] }
        let replies = try await redis.pipeline(usernames.map { RedisCommand("EXISTS", RedisKeys.user($0)) })
        return replies.map { $0.int == 1 }
    }

    public func touch(_ username: String) async throws {
        try await redis.run(Scripts.userTouch, keys: [RedisKeys.user(username)], arguments: [])
    }

    public func isBootstrapAdmin(_ user: String) async throws -> Bool {
        try await redis.send(RedisCommand("HGET", RedisKeys.user(user), "admin")).string == "bootstrap"
    }

    public func setCurrentRoom(_ room: String?, of user: String, ttl: Duration) async throws {
        if let room {
            try await redis.send(RedisCommand("SET", RedisKeys.userCurrentRoom(user), room, "EX", String(max(1, ttl.components.seconds))))
        } else {
            try await redis.send(RedisCommand("DEL", RedisKeys.userCurrentRoom(user)))
        }
    }

    public func currentRoom(of user: String) async throws -> String? {
        try await redis.send(RedisCommand("GET", RedisKeys.userCurrentRoom(user))).string
    }

    public func search(prefix: String, limit: Int) async throws -> [UserSummary] {
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
        return zip(names, actives).map { UserSummary(username: $0, lastActive: Int64($1.int ?? 0)) }
    }
}
