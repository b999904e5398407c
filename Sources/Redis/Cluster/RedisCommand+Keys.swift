extension RedisCommand {
    /// The keys this command touches, by Redis's key specifications for the commands this client is used with:
    /// `EVAL`/`EVALSHA`/`FCALL` take `numkeys` keys after the script; `DEL`, `EXISTS`, `UNLINK`, `TOUCH`, `MGET`,
    /// `WATCH` take every argument; `MSET` every other one; `XREAD`/`XREADGROUP` the first half after `STREAMS`;
    /// `XGROUP`/`XINFO` the argument after the subcommand; `ZUNIONSTORE`-style commands a destination and `numkeys`;
    /// commands about the server or classic pub/sub (`PING`, `INFO`, `PUBLISH`, `SCRIPT`, `CLUSTER`, ...) none; any other
    /// command its first argument (`SPUBLISH` its shard channel, which has a slot like a key). A cluster routes a command by the slot of these keys.
    public var keys: [ArraySlice<UInt8>] {
        let arguments = self.arguments
        guard arguments.count > 1 else { return [] }
        switch name {
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            guard arguments.count > 2, let count = Int(String(decoding: arguments[2], as: UTF8.self)), count >= 0,
                  arguments.count >= 3 + count else { return [] }
            return Array(arguments[3..<(3 + count)])
        case "DEL", "EXISTS", "UNLINK", "TOUCH", "MGET", "WATCH", "SINTER", "SUNION", "SDIFF", "PFCOUNT":
            return Array(arguments.dropFirst())
        case "XREAD", "XREADGROUP":
            // `... STREAMS key [key ...] id [id ...]`: the keys are the first half of what follows STREAMS.
            guard let streams = arguments.firstIndex(where: { String(decoding: $0, as: UTF8.self).uppercased() == "STREAMS" }) else { return [] }
            let rest = arguments[(streams + 1)...]
            return Array(rest.prefix(rest.count / 2))
        case "XGROUP", "XINFO":
            // A subcommand, then the key (`XGROUP CREATE key group id`, `XINFO STREAM key`); `XINFO HELP` has none.
            return arguments.count > 2 ? [arguments[2]] : []
        case "MSET", "MSETNX":
            return stride(from: 1, to: arguments.count, by: 2).map { arguments[$0] }
        case "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE":
            guard arguments.count > 2, let count = Int(String(decoding: arguments[2], as: UTF8.self)), count >= 0,
                  arguments.count >= 3 + count else { return [arguments[1]] }
            return [arguments[1]] + Array(arguments[3..<(3 + count)])
        case "PING", "ECHO", "INFO", "TIME", "DBSIZE", "PUBLISH", "SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE",
             "PUNSUBSCRIBE", "SCRIPT", "CLUSTER", "CLIENT", "CONFIG", "COMMAND", "AUTH", "SELECT", "ASKING", "READONLY",
             "FLUSHALL", "FLUSHDB", "KEYS", "SCAN", "RANDOMKEY", "MEMORY", "SLOWLOG", "LATENCY", "HELLO", "QUIT":
            return []
        default:
            return [arguments[1]]
        }
    }

    /// The one slot every key of this command lives in; `nil` for a command without keys. Throws
    /// ``RedisError/crossSlot(_:)`` naming the keys when they span slots (Redis would answer CROSSSLOT).
    public func slot() throws(RedisError) -> Int? {
        var slot: Int?
        for key in keys {
            let keySlot = key.withUnsafeBufferPointer { RedisHashSlot.slot(for: $0) }
            if let slot, slot != keySlot {
                throw RedisError.crossSlot(keys.map { String(decoding: $0, as: UTF8.self) })
            }
            slot = keySlot
        }
        return slot
    }
}
