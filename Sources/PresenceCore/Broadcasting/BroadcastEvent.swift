/// One event for clients: its name, the client channel it goes to and its data (a JSON object).
public struct BroadcastEvent: Sendable {
    public var event: String
    public var channel: String
    public var data: JSONValue

    public init(event: String, channel: String, data: JSONValue) {
        self.event = event
        self.channel = channel
        self.data = data
    }

    /// The pub/sub payload: `{"event": ..., "channel": ..., "data": {...}}`.
    public var payload: String {
        JSONValue.object(["event": .string(event), "channel": .string(channel), "data": data]).serialized
    }
}
