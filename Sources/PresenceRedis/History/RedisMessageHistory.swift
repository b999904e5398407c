import PresenceCore
import Redis

/// ``HistoryStorage`` in Redis: each room's messages in a stream (`room:{id}:history`), holding at most `limit` entries. Entry ids are
/// the message ids: unique per room, time-ordered, and usable as `before` / `after` cursors.
public struct RedisMessageHistory: HistoryStorage {
    let redis: RedisClient
    /// Messages kept per room.
    public let limit: Int
    public let overflow: HistoryOverflow

    public init(redis: RedisClient, limit: Int, overflow: HistoryOverflow = .trimOldest) {
        self.redis = redis
        self.limit = limit
        self.overflow = overflow
    }

    /// Appends a message; throws ``DomainError/roomNotFound`` when the room does not exist, and
    /// ``DomainError/conflict(_:)`` when the history is full and refuses new messages.
    public func append(room: String, username: String, content: String, role: String?, isAI: Bool) async throws -> ChatMessage {
        var arguments = [String(limit), overflow.rawValue, "username", username, "content", content]
        if let role { arguments += ["role", role] }
        if isAI { arguments += ["ai", "1"] }
        let reply = try await redis.run(
            [RedisScriptCall(Scripts.historyAppend, keys: [RedisKeys.roomMeta(room), RedisKeys.roomHistory(room)], arguments: arguments)]
        )[0]
        if let message = reply.errorMessage {
            if message.hasPrefix("NOROOM") { throw DomainError.roomNotFound }
            if message.hasPrefix("CLOSED") { throw DomainError.roomClosed }
            if message.hasPrefix("FULL") { throw DomainError.conflict("Transcript is full") }
            throw RedisError.server(message)
        }
        guard let id = reply.string else { throw RedisError.protocolError("unexpected XADD reply \(reply)") }
        return ChatMessage(
            id: id, roomId: room, username: username, content: content, timestamp: Self.timestamp(of: id), role: role, isAI: isAI
        )
    }

    /// Up to `count` messages older than `before` (or the newest), newest first.
    public func newest(room: String, count: Int, before: String?) async throws -> [ChatMessage] {
        // Nothing is older than the smallest id (Redis refuses an exclusive range that starts below it).
        if let before, Self.isSmallestID(before) { return [] }
        let start = before.map { "(" + $0 } ?? "+"
        let reply = try await redis.send(RedisCommand("XREVRANGE", RedisKeys.roomHistory(room), start, "-", "COUNT", String(count)))
        return Self.parse(reply, room: room)
    }

    /// Up to `count` messages newer than `after` (or the oldest), oldest first.
    public func oldest(room: String, count: Int, after: String?) async throws -> [ChatMessage] {
        // Nothing is newer than the largest id (Redis refuses an exclusive range that starts above it).
        if let after, Self.isLargestID(after) { return [] }
        let start = after.map { "(" + $0 } ?? "-"
        let reply = try await redis.send(RedisCommand("XRANGE", RedisKeys.roomHistory(room), start, "+", "COUNT", String(count)))
        return Self.parse(reply, room: room)
    }

    public func delete(room: String, id: String) async throws -> Bool {
        try await redis.send(RedisCommand("XDEL", RedisKeys.roomHistory(room), id)).int == 1
    }

    static func isSmallestID(_ id: String) -> Bool {
        id.split(separator: "-").allSatisfy { UInt64($0) == 0 }
    }

    static func isLargestID(_ id: String) -> Bool {
        id.split(separator: "-").allSatisfy { UInt64($0) == .max }
    }

    static func timestamp(of id: String) -> Int64 {
        Int64(id.split(separator: "-").first ?? "") ?? 0
    }

    static func parse(_ reply: RESPValue, room: String) -> [ChatMessage] {
        (reply.array ?? []).compactMap { entry in
            guard let pair = entry.array, pair.count == 2, let id = pair[0].string, let fields = pair[1].array else { return nil }
            var values: [String: String] = [:]
            var index = 0
            while index + 1 < fields.count {
                if let key = fields[index].string, let value = fields[index + 1].string { values[key] = value }
                index += 2
            }
            return ChatMessage(
                id: id, roomId: room, username: values["username"] ?? "", content: values["content"] ?? "",
                timestamp: timestamp(of: id), role: values["role"], isAI: values["ai"] == "1"
            )
        }
    }
}
