/// A user present in a room now, and when their presence was last refreshed (its expiry less the TTL).
public struct PresentUser: Sendable, Hashable {
    public var username: String
    /// Epoch ms.
    public var lastSeen: Int64

    public init(username: String, lastSeen: Int64) {
        self.username = username
        self.lastSeen = lastSeen
    }
}
