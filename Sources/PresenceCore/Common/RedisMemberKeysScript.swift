import Redis

/// A Lua script over one room that also touches the presence key of each member, `room:{<id>}:presence:<user>`
/// (`room_delete`, `room_leave_private`, `support_close`).
///
/// Redis Cluster wants every key a script touches in `KEYS[]`, and who the members are is only known in Redis. So
/// the members are read first (`ZRANGE room:{<id>}:members 0 -1`); their presence keys go after the script's own keys
/// and their names after its own arguments, in the same order. The script reads the members again: when one of them
/// has no key passed (someone joined in between) it changes nothing and answers an error starting with `RETRY`. Then
/// the members are read again and the script re-run, at most ``attempts`` times in all. Every key carries the room's
/// hash tag, so the call stays in one slot.
struct RedisMemberKeysScript: Sendable {
    /// How many times the script runs before the call gives up.
    static let attempts = 5

    let script: RedisScript
    let room: String
    /// The script's own keys, before the presence keys.
    let keys: [String]
    /// The script's own arguments, before the users.
    let arguments: [String]
    /// Users whose presence key the script needs whether or not they are members (the one leaving), first.
    var alsoUsers: [String] = []

    /// The call that passes the presence keys of `users`, in the order given.
    func call(users: [String]) -> RedisScriptCall {
        RedisScriptCall(
            script,
            keys: keys + users.map { RedisKeys.roomPresence(room, $0) },
            arguments: arguments + users
        )
    }

    /// Reads the members and runs the script with their keys, again while it answers `RETRY`. Returns the script's
    /// reply; an error reply throws ``RedisError/server(_:)``, as does the last `RETRY` after `attempts` runs.
    func run(on redis: RedisClient, attempts: Int = Self.attempts) async throws -> RESPValue {
        var retry = ""
        for _ in 0..<attempts {
            let reply = try await redis.run([call(users: try await users(on: redis))])[0]
            guard let message = reply.errorMessage else { return reply }
            guard message.hasPrefix("RETRY") else { throw RedisError.server(message) }
            retry = message
        }
        throw RedisError.server("\(retry) (\(script.name) on room \(room): the members kept changing, gave up after \(attempts) attempts)")
    }

    /// ``alsoUsers`` and then the room's members (all of them, expired or not), each once.
    private func users(on redis: RedisClient) async throws -> [String] {
        let reply = try await redis.send(RedisCommand("ZRANGE", RedisKeys.roomMembers(room), "0", "-1"))
        let members = (reply.array ?? []).compactMap(\.string)
        var seen = Set(alsoUsers)
        return alsoUsers + members.filter { seen.insert($0).inserted }
    }
}
