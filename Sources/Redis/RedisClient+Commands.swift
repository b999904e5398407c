import NIOCore

extension RedisClient {
    /// `PING`; returns when Redis answered.
    public func ping(timeout: Duration? = nil) async throws {
        try await send(RedisCommand("PING"), timeout: timeout)
    }

    /// Whether Redis serves: `PING` on one Redis; on a cluster, every slot served and every primary answering PING.
    public func checkHealth(timeout: Duration? = nil) async throws {
        if let cluster {
            try await clusterHealth(on: cluster, timeout: timeout)
        } else {
            try await ping(timeout: timeout)
        }
    }

    /// Sends a node-wide command (such as `INFO`) to the one Redis, or to every primary of a cluster at once, and
    /// returns each node's reply with its address (error replies included; a cluster node that did not answer is left
    /// out).
    public func sendToEveryPrimary(_ command: RedisCommand, timeout: Duration? = nil) async throws -> [(node: String, reply: RESPValue)] {
        if let cluster { return try await clusterSendToEveryPrimary(command, on: cluster, timeout: timeout) }
        return [(configuration.endpoint.description, try await raw(command, timeout: timeout))]
    }

    /// `GET key`: the value as bytes, `nil` when the key does not exist.
    public func get(_ key: String) async throws -> ByteBuffer? {
        switch try await send(RedisCommand("GET", key)) {
        case .bulkString(let value): return value
        case .null: return nil
        case let other: throw RedisError.protocolError("unexpected reply to GET: \(other)")
        }
    }

    /// `GET key` decoded as UTF-8.
    public func getString(_ key: String) async throws -> String? {
        try await get(key).map { String(buffer: $0) }
    }

    /// `SET key value [EX seconds]`.
    public func set(_ key: String, to value: String, expireSeconds: Int? = nil) async throws {
        var command = RedisCommand("SET", key, value)
        if let expireSeconds {
            command.append("EX")
            command.append(expireSeconds)
        }
        try await send(command)
    }

    /// `DEL key...`; returns how many keys existed.
    @discardableResult
    public func delete(_ keys: [String]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        return try await send(RedisCommand("DEL", keys)).int ?? 0
    }

    /// Publishes `message` on `channel` (`PUBLISH`, or `SPUBLISH` on a cluster); returns how many subscribers of the
    /// node(s) concerned received it.
    @discardableResult
    public func publish(_ message: String, to channel: String) async throws -> Int {
        try await send(publishCommand(message, to: channel)).int ?? 0
    }
}
