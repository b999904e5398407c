/// One event of a Pusher webhook, as the receiver gets it in the body's `events` array:
/// `{"name": "channel_occupied", "channel": "..."}`, plus `user_id` for member events and `event`, `data`, `socket_id`
/// (and `user_id` on presence channels) for client events.
public struct WebhookEvent: Sendable, Equatable {
    /// The webhook events Pusher defines, by their wire names.
    public enum Name: String, Sendable, CaseIterable {
        case channelOccupied = "channel_occupied"
        case channelVacated = "channel_vacated"
        case memberAdded = "member_added"
        case memberRemoved = "member_removed"
        case clientEvent = "client_event"
        case cacheMiss = "cache_miss"
        /// Not Pusher's: a support ticket's customer waited `SUPPORT_UNATTENDED_AFTER` with no agent present (once per
        /// episode), on the ticket's channel with `ticketId`, `customer`, `waitingSinceMs`, `waitMs`, `assignedAgentId`.
        case ticketUnattended = "ticket_unattended"
        /// Not Pusher's: messages a member of a private room or a support ticket had not seen `UNSEEN_GRACE_MS` after
        /// the first was posted (neither present nor subscribed), on the room's channel with `room`, `user_id`,
        /// `message_id`, `message_time`, `from`, `count`, `last_message_id`, `last_message_time` (and `ticketId`).
        case messageUnseen = "message_unseen"
    }

    public var name: Name
    public var channel: String
    /// The fields beside `name` and `channel`.
    public var fields: [String: JSONValue]

    public init(_ name: Name, channel: String, fields: [String: JSONValue] = [:]) {
        self.name = name
        self.channel = channel
        self.fields = fields
    }

    /// The event as the receiver reads it.
    public var json: JSONValue {
        var object = fields
        object["name"] = .string(name.rawValue)
        object["channel"] = .string(channel)
        return .object(object)
    }

    /// Whether `channel` is one of the service's internal channels (`#signed-in`, `#server-to-user-<id>`), for which no
    /// webhook event of any kind is sent: they would tell a receiver who signs in, and when.
    public static func isInternal(_ channel: String) -> Bool { channel.hasPrefix("#") }

    /// The webhook event a client event or a presence channel's member event stands for; `nil` for any other event,
    /// and for the service's internal channels (``isInternal(_:)``).
    public init?(broadcast: BroadcastEvent) {
        guard !Self.isInternal(broadcast.channel) else { return nil }
        if broadcast.event.hasPrefix("client-") {
            var fields: [String: JSONValue] = [
                "event": .string(broadcast.event), "data": .string(broadcast.data.string ?? broadcast.data.serialized),
            ]
            if let socket = broadcast.socketID { fields["socket_id"] = .string(socket) }
            if let user = broadcast.userID { fields["user_id"] = .string(user) }
            self.init(.clientEvent, channel: broadcast.channel, fields: fields)
            return
        }
        let name: Name
        switch broadcast.event {
        case ServiceEvent.memberAdded.rawValue: name = .memberAdded
        case ServiceEvent.memberRemoved.rawValue: name = .memberRemoved
        default: return nil
        }
        guard broadcast.channel.hasPrefix("presence-"), let user = broadcast.data["user_id"]?.string else { return nil }
        self.init(name, channel: broadcast.channel, fields: ["user_id": .string(user)])
    }
}
