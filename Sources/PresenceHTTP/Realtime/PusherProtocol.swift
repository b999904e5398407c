import PresenceCore

/// Pusher Channels protocol messages (protocol 7; 6 accepted).
enum PusherProtocol {
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

    static func subscriptionSucceeded(channel: String) -> String {
        message("pusher_internal:subscription_succeeded", channel: channel, data: "{}")
    }

    static func subscriptionSucceeded(channel: String, members: [String]) -> String {
        var hash: [String: JSONValue] = [:]
        for member in members { hash[member] = ["username": .string(member)] }
        let presence: JSONValue = [
            "presence": ["ids": .array(members.map(JSONValue.string)), "hash": .object(hash), "count": .int(members.count)],
        ]
        return message("pusher_internal:subscription_succeeded", channel: channel, data: .string(presence.serialized))
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

    /// `^[-a-zA-Z0-9_=@,.;]+$`, at most 200 characters; or `#server-to-user-` and a user id of such characters.
    static func isValidChannel(_ name: String) -> Bool {
        if name.hasPrefix(serverToUserPrefix) {
            let user = name.dropFirst(serverToUserPrefix.count)
            return !user.isEmpty && isValidChannel(String(user))
        }
        guard (1...200).contains(name.utf8.count) else { return false }
        return name.utf8.allSatisfy { b in
            (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122)
                || [UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "="), UInt8(ascii: "@"), UInt8(ascii: ","),
                    UInt8(ascii: "."), UInt8(ascii: ";")].contains(b)
        }
    }

    /// The exact `channel_data` string the auth endpoint signs for a user. Formatted like Python's `json.dumps`
    /// so clients that re-serialize it themselves (pysher) send back the same bytes.
    static func channelData(user: String) -> String {
        let id = JSONValue.string(user).serialized
        return "{\"user_id\": \(id), \"user_info\": {\"username\": \(id)}}"
    }
}
