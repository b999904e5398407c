/// A chat room as clients see it.
public struct Room: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable {
        case `public`
        case `private`
    }

    public var id: String
    public var name: String
    public var type: Kind
    public var createdAt: Int64
    public var createdBy: String
    /// Users present now.
    public var userCount: Int
    /// The members of a private room; absent for public rooms.
    public var members: [String]?

    public init(id: String, name: String, type: Kind, createdAt: Int64, createdBy: String, userCount: Int, members: [String]?) {
        self.id = id
        self.name = name
        self.type = type
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.userCount = userCount
        self.members = members
    }

    /// Builds a room from its metadata hash; `nil` when the hash is not a chat room's.
    package init?(meta: [String: String], userCount: Int, members: [String]?) {
        guard let id = meta["id"], let name = meta["name"], let typeText = meta["type"],
              let type = Kind(rawValue: typeText) else { return nil }
        self.init(
            id: id, name: name, type: type,
            createdAt: Int64(meta["createdAt"] ?? "") ?? 0, createdBy: meta["createdBy"] ?? "",
            userCount: userCount, members: type == .private ? (members ?? []).sorted() : nil
        )
    }

    /// The room as a JSON object, for events.
    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(id), "name": .string(name), "type": .string(type.rawValue),
            "createdAt": .int64(createdAt), "createdBy": .string(createdBy), "userCount": .int(userCount),
        ]
        if let members { object["members"] = .array(members.map(JSONValue.string)) }
        return .object(object)
    }

    /// The client channel of the room's presence and message events.
    public var channel: String { Self.channel(id: id, type: type) }

    /// The client channel of the presence and message events of room `id` of type `type`.
    public static func channel(id: String, type: Kind) -> String { type == .public ? "room-\(id)" : "private-room-\(id)" }

    /// The presence channel of room `id` (`pusher_internal:member_added` / `member_removed`).
    public static func presenceChannel(id: String) -> String { "presence-room-\(id)" }

    /// The client channels where `room-updated` and `room-deleted` go.
    public var listChannels: [String] {
        type == .public ? ["chats-public"] : (members ?? []).map { "private-chats-\($0)" }
    }
}
