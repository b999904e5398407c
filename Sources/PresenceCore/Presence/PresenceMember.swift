/// A present member of a room as the presence store knows it.
public struct PresenceMember: Sendable, Equatable {
    public var username: String
    public var joinedAt: Int64
    public var expiresAt: Int64
    /// Last refresh (join, heartbeat, switch...): `expiresAt - ttl`.
    public var lastSeen: Int64
    /// The member's state (JSON object) stored with the presence, e.g. role and typing for support rooms.
    public var state: JSONValue

    public init(username: String, joinedAt: Int64, expiresAt: Int64, lastSeen: Int64, state: JSONValue) {
        self.username = username
        self.joinedAt = joinedAt
        self.expiresAt = expiresAt
        self.lastSeen = lastSeen
        self.state = state
    }
}
