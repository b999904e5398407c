/// One event for clients: its name, the client channel it goes to and its data (a JSON object, or a string as
/// Pusher's HTTP API gives it).
public struct BroadcastEvent: Sendable {
    public var event: String
    public var channel: String
    public var data: JSONValue
    /// The socket that caused it (client events, HTTP API `socket_id`): it does not get its own event back.
    public var socketID: String?
    /// The sender's user id on presence channels (client events).
    public var userID: String?
    /// Published already by the Redis script that made the change (``PresenceSwitch/announced``): only its webhook
    /// event is still to be written.
    public var webhookOnly = false

    public init(event: String, channel: String, data: JSONValue, socketID: String? = nil, userID: String? = nil) {
        self.event = event
        self.channel = channel
        self.data = data
        self.socketID = socketID
        self.userID = userID
    }

    /// One of the service's own events.
    public init(_ name: ServiceEvent, channel: String, data: JSONValue) {
        self.init(event: name.rawValue, channel: channel, data: data)
    }

    /// The pub/sub payload: `{"event": ..., "channel": ..., "data": ..., "socket_id"?: ..., "user_id"?: ...}`.
    public var payload: String { payloadObject.serialized }

    var payloadObject: JSONValue {
        var object: [String: JSONValue] = ["event": .string(event), "channel": .string(channel), "data": data]
        if let socketID { object["socket_id"] = .string(socketID) }
        if let userID { object["user_id"] = .string(userID) }
        return .object(object)
    }

    /// The event as a Pusher client receives it: `{"event", "channel", "data", "user_id"?}`, `data` always a string
    /// (JSON text when it is an object).
    public var clientMessage: String {
        var object: [String: JSONValue] = [
            "event": .string(event), "channel": .string(channel), "data": .string(data.string ?? data.serialized),
        ]
        if let userID { object["user_id"] = .string(userID) }
        return JSONValue.object(object).serialized
    }

    /// One pub/sub message for several events on one channel, in order: `{"events": [payload, payload, ...]}` (each
    /// element as ``payload``); one event is its own ``payload``.
    public static func payload(_ events: [BroadcastEvent]) -> String {
        if events.count == 1 { return events[0].payload }
        return JSONValue.object(["events": .array(events.map(\.payloadObject))]).serialized
    }

    /// `events` grouped by channel, each channel's events in their order, the channels in the order they first appear:
    /// what goes out as one message per channel.
    public static func byChannel(_ events: [BroadcastEvent]) -> [(channel: String, events: [BroadcastEvent])] {
        var order: [String] = []
        var groups: [String: [BroadcastEvent]] = [:]
        for event in events {
            if groups[event.channel] == nil { order.append(event.channel) }
            groups[event.channel, default: []].append(event)
        }
        return order.map { ($0, groups[$0]!) }
    }
}
