import PresenceCore

/// Pusher Channels protocol messages (protocol 7; 6 accepted).
package enum PusherProtocol {
    static let supportedVersions: Set<Int> = [6, 7]

    static func message(_ event: String, channel: String? = nil, data: JSONValue) -> String {
        var object: [String: JSONValue] = ["event": .string(event), "data": data]
        if let channel { object["channel"] = .string(channel) }
        return JSONValue.object(object).serialized
    }

    static func connectionEstablished(socketID: String, activityTimeout: Int) -> String {
        let data: JSONValue = ["socket_id": .string(socketID), "activity_timeout": .int(activityTimeout)]
        return message("pusher:connection_established", data: .string(data.serialized))
    }

    static func error(_ text: String, code: Int?) -> String {
        message("pusher:error", data: ["message": .string(text), "code": code.map(JSONValue.int) ?? .null])
    }

    static func subscriptionError(channel: String, type: String, error: String, status: Int) -> String {
        message("pusher:subscription_error", channel: channel,
                data: ["type": .string(type), "error": .string(error), "status": .int(status)])
    }

    /// `pusher_internal:subscription_succeeded`; on a recoverable channel its `data` holds
    /// `{"recovery": {"recovered", "epoch", "offset"}}` (the channel's latest position, and whether the subscriber's
    /// `recover` position was recovered).
    static func subscriptionSucceeded(channel: String, recovery: ChannelRecovery? = nil) -> String {
        guard let recovery else { return message("pusher_internal:subscription_succeeded", channel: channel, data: "{}") }
        let data: JSONValue = ["recovery": recovery.json]
        return message("pusher_internal:subscription_succeeded", channel: channel, data: .string(data.serialized))
    }

    /// A presence channel's `pusher_internal:subscription_succeeded`: `ids` and `hash` (each member's `user_info`) of
    /// the members listed, and `count`, the channel's true member count (more than the listed on a room-backed
    /// channel larger than `PUSHER_MAX_PRESENCE_MEMBERS`).
    /// On a recoverable channel `data` holds `recovery` beside `presence` (``subscriptionSucceeded(channel:recovery:)``).
    static func subscriptionSucceeded(channel: String, presence snapshot: ChannelPresence.Snapshot, recovery: ChannelRecovery? = nil) -> String {
        var hash: [String: JSONValue] = [:]
        for member in snapshot.members { hash[member.id] = member.info }
        var presence: JSONValue = [
            "presence": [
                "ids": .array(snapshot.members.map { .string($0.id) }), "hash": .object(hash), "count": .int(snapshot.count),
            ],
        ]
        if let recovery { presence = .object(presence.object!.merging(["recovery": recovery.json]) { $1 }) }
        return message("pusher_internal:subscription_succeeded", channel: channel, data: .string(presence.serialized))
    }

    // MARK: - Pusher's limits, refused with the codes and messages Pusher-compatible servers send

    /// `n KB` for a whole number of KiB, else `n bytes`.
    package static func sizeText(_ bytes: Int) -> String {
        bytes % 1024 == 0 ? "\(bytes / 1024) KB" : "\(bytes) bytes"
    }

    /// A client event whose name is longer than `PUSHER_MAX_EVENT_NAME`: `pusher:error` 4301.
    static func eventNameTooLong(max: Int) -> String {
        error("Event name is too long. Maximum allowed size is \(max).", code: 4301)
    }

    /// A client event whose data is larger than `PUSHER_MAX_EVENT_BYTES`: `pusher:error` 4301.
    static func eventDataTooLarge(max: Int) -> String {
        error("The event data should be less than \(sizeText(max)).", code: 4301)
    }

    /// A subscribe to a channel name longer than `PUSHER_MAX_CHANNEL_NAME`.
    static func channelNameTooLong(channel: String, max: Int) -> String {
        subscriptionError(
            channel: channel, type: "LimitReached", error: "The channel name is longer than the allowed \(max) characters.",
            status: 4009
        )
    }

    /// A new member of a presence channel that has `PUSHER_MAX_PRESENCE_MEMBERS` already: 4100, over capacity.
    static func presenceChannelFull(channel: String) -> String {
        subscriptionError(
            channel: channel, type: "LimitReached", error: "The maximum members per presence channel limit was reached",
            status: 4100
        )
    }

    /// A presence subscribe whose `user_info` is larger than `PUSHER_MAX_USER_INFO_BYTES`.
    static func userInfoTooLarge(channel: String, max: Int) -> String {
        subscriptionError(
            channel: channel, type: "LimitReached", error: "The maximum size for a channel member is \(sizeText(max)).",
            status: 4301
        )
    }

    /// Whether `name` would be a valid channel name at any length: what tells a name that is too long from one that is
    /// malformed.
    package static func isWellFormedChannel(_ name: String) -> Bool {
        isValidChannel(name, maxLength: .max)
    }

    /// The channel of the events the app sends to one signed-in user: `#server-to-user-<user id>`.
    static let serverToUserPrefix = "#server-to-user-"

    /// The app-wide presence of signed-in users: every signed-in connection holds it, like a presence channel no client
    /// can subscribe to (the name is not a valid channel name); its member events become watchlist events.
    static let signedInChannel = "#signed-in"

    /// `pusher_internal:watchlist_events` for `user`: `name` (`online` or `offline`) for `users`, on the user's
    /// `#server-to-user-` channel, as Pusher sends it.
    static func watchlistEvents(_ name: String, users: [String], to user: String) -> String {
        let events: JSONValue = ["events": [["name": .string(name), "user_ids": .array(users.map(JSONValue.string))]]]
        return message("pusher_internal:watchlist_events", channel: serverToUserPrefix + user, data: .string(events.serialized))
    }

    /// `pusher:signin_success`, with the `user_data` the connection signed in with.
    static func signinSuccess(userData: String) -> String {
        message("pusher:signin_success", data: ["user_data": .string(userData)])
    }

    /// Pusher's longest channel name, the default of `PUSHER_MAX_CHANNEL_NAME`.
    package static let defaultMaxChannelName = 164

    /// `^[-a-zA-Z0-9_=@,.;]+$`, or `#server-to-user-` and a user id of such characters; at most `maxLength`
    /// characters in all (`PUSHER_MAX_CHANNEL_NAME`, Pusher's 164).
    package static func isValidChannel(_ name: String, maxLength: Int = defaultMaxChannelName) -> Bool {
        guard !name.isEmpty, name.utf8.count <= maxLength else { return false }
        var body = Substring(name)
        if name.hasPrefix(serverToUserPrefix) {
            body = name.dropFirst(serverToUserPrefix.count)
            if body.isEmpty { return false }
        }
        return body.utf8.allSatisfy { b in
            (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122)
                || [UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "="), UInt8(ascii: "@"), UInt8(ascii: ","),
                    UInt8(ascii: "."), UInt8(ascii: ";")].contains(b)
        }
    }

    /// The exact `channel_data` string the auth endpoint signs for a user. Formatted like Python's `json.dumps`
    /// so clients that re-serialize it themselves (pysher) send back the same bytes.
    package static func channelData(user: String) -> String {
        let id = JSONValue.string(user).serialized
        return "{\"user_id\": \(id), \"user_info\": {\"username\": \(id)}}"
    }
}
