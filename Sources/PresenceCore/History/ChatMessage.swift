/// One message of a room's history.
public struct ChatMessage: Sendable, Equatable, Codable {
    /// The stream entry id (`<ms>-<seq>`): unique per room, ordered, usable as a cursor.
    public var id: String
    public var roomId: String
    public var username: String
    public var content: String
    /// Epoch milliseconds, from Redis's clock (the id's first part).
    public var timestamp: Int64
    /// The author's role in support rooms; absent in chat rooms.
    public var role: String?
    /// `true` for Ryo's replies: written by the AI, not by a person (no account can take the AI's name).
    public var isAI: Bool

    public init(id: String, roomId: String, username: String, content: String, timestamp: Int64, role: String? = nil, isAI: Bool = false) {
        self.id = id
        self.roomId = roomId
        self.username = username
        self.content = content
        self.timestamp = timestamp
        self.role = role
        self.isAI = isAI
    }

    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(id), "roomId": .string(roomId), "username": .string(username),
            "content": .string(content), "timestamp": .int64(timestamp),
        ]
        if let role { object["role"] = .string(role) }
        if isAI { object["isAI"] = .bool(true) }
        return .object(object)
    }

    /// `true` when `id` has the shape of a message id (`<ms>-<seq>`).
    public static func isValidID(_ id: String) -> Bool {
        let parts = id.split(separator: "-", omittingEmptySubsequences: false)
        return id.count <= 41 && parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }
            && UInt64(parts[0]) != nil && UInt64(parts[1]) != nil
    }
}
