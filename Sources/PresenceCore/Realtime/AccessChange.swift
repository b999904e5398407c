/// Someone's access to some channels may have ended (left or removed from a private room, a room deleted, an agent
/// removed, a ticket's customer changed). Published to every worker (``RedisKeys/pusherControl``); each re-checks
/// the matching subscriptions of its live sockets and ends those no longer allowed.
public struct AccessChange: Sendable, Equatable {
    /// Whose subscriptions to re-check; `nil`: everyone's on the channels.
    public var user: String?
    /// Channels to re-check by name.
    public var channels: [String]
    /// Channels to re-check by prefix (e.g. every ticket channel).
    public var prefix: String?

    public init(user: String?, channels: [String] = [], prefix: String? = nil) {
        self.user = user
        self.channels = channels
        self.prefix = prefix
    }

    /// Whether a subscription of `holder` to `channel` is concerned.
    public func concerns(channel: String, holder: String) -> Bool {
        if let user, user != holder { return false }
        return channels.contains(channel) || prefix.map { channel.hasPrefix($0) } == true
    }

    /// The control message: `{"recheck": {"user": ..., "channels": [...], "prefix": ...}}`.
    public var payload: String {
        var object: [String: JSONValue] = ["channels": .array(channels.map(JSONValue.string))]
        if let user { object["user"] = .string(user) }
        if let prefix { object["prefix"] = .string(prefix) }
        return JSONValue.object(["recheck": .object(object)]).serialized
    }

    /// Reads a control message's `recheck` object.
    public init?(control message: [String: JSONValue]) {
        guard let object = message["recheck"]?.object else { return nil }
        self.user = object["user"]?.string
        if case .array(let items)? = object["channels"] {
            self.channels = items.compactMap(\.string)
        } else {
            self.channels = []
        }
        self.prefix = object["prefix"]?.string
        if channels.isEmpty && prefix == nil { return nil }
    }
}
