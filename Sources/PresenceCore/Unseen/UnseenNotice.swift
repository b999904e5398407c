/// A `message_unseen` notice (#32): messages posted in a private room or a support ticket while one of its members had
/// not seen the room (neither present in it nor subscribed to its channel on any worker), for `UNSEEN_GRACE_MS`.
/// At most one is pending per (room, member): later messages count it up.
public struct UnseenNotice: Sendable, Equatable {
    /// The room (`ticket_<id>` for a ticket) and the member the notice is for.
    public var room: String
    public var user: String
    /// The first unseen message: its id, time (ms) and author.
    public var messageID: String
    public var messageTime: Int64
    public var from: String
    /// How many messages the notice stands for, and the latest of them.
    public var count: Int
    public var lastMessageID: String
    public var lastMessageTime: Int64

    public init(
        room: String, user: String, messageID: String, messageTime: Int64, from: String, count: Int,
        lastMessageID: String, lastMessageTime: Int64
    ) {
        self.room = room
        self.user = user
        self.messageID = messageID
        self.messageTime = messageTime
        self.from = from
        self.count = count
        self.lastMessageID = lastMessageID
        self.lastMessageTime = lastMessageTime
    }

    /// The room's client channel: `private-room-<id>` for private rooms and tickets alike.
    public var channel: String { "private-room-\(room)" }

    /// What identifies the notice among every one ever sent: room, member and first message (unique per room).
    public var marker: String { "\(room)\n\(user)\n\(messageID)" }

    /// The webhook event receivers get: `{"name": "message_unseen", "channel": "private-room-<id>", "room", "user_id",
    /// "message_id", "message_time", "from", "count", "last_message_id", "last_message_time"}`, plus `ticketId` for a
    /// support ticket.
    public var webhookEvent: WebhookEvent {
        var fields: [String: JSONValue] = [
            "room": .string(room), "user_id": .string(user), "message_id": .string(messageID),
            "message_time": .number(Double(messageTime)), "from": .string(from), "count": .number(Double(count)),
            "last_message_id": .string(lastMessageID), "last_message_time": .number(Double(lastMessageTime)),
        ]
        if room.hasPrefix("ticket_") { fields["ticketId"] = .string(String(room.dropFirst("ticket_".count))) }
        return WebhookEvent(.messageUnseen, channel: channel, fields: fields)
    }
}
