/// A member of a support room as clients see it.
public struct SupportMember: Sendable, Equatable {
    public enum Role: String, Sendable, CaseIterable {
        case customer, agent, observer
    }

    public var username: String
    public var role: Role
    public var typing: Bool
    public var joinedAt: Int64
    public var lastSeen: Int64
    public var expiresAt: Int64

    init(_ member: PresenceMember) {
        self.username = member.username
        self.role = member.state["role"]?.string.flatMap(Role.init(rawValue:)) ?? .customer
        self.typing = member.state["typing"]?.bool ?? false
        self.joinedAt = member.joinedAt
        self.lastSeen = member.lastSeen
        self.expiresAt = member.expiresAt
    }

    /// The member's state (`room:{id}:states`).
    static func state(role: Role, typing: Bool) -> JSONValue {
        ["role": .string(role.rawValue), "typing": .bool(typing)]
    }

    /// `{username, metadata: {role}, presence: {status, typing}, joinedAt, lastSeen, expiresAt}`.
    public var json: JSONValue {
        [
            "username": .string(username),
            "metadata": ["role": .string(role.rawValue)],
            "presence": ["status": "online", "typing": .bool(typing)],
            "joinedAt": .int64(joinedAt), "lastSeen": .int64(lastSeen), "expiresAt": .int64(expiresAt),
        ]
    }
}
