import PresenceCore

/// ryOS's own realtime protocol, its `local` provider (`LocalRealtimeClient` in ryOS's `src/lib/pusherClient.ts`,
/// served by its `scripts/api-standalone-server.ts`): JSON text frames on `/ws?ticket=<ticket>`.
///
/// Client → server: `{"type":"subscribe","channel"}`, `{"type":"unsubscribe","channel"}`, `{"type":"ping"}`. Anything
/// else (bad JSON, another type, no channel) is ignored, as ryOS's server does. Server → client: `{"type":"pong"}`,
/// `{"type":"event","channel","event","data"}` with `data` a JSON value (not a string holding JSON), and
/// `{"type":"subscription_error","channel"}`. There is no welcome frame and no server ping at this level.
package enum RyOSRealtimeProtocol {
    /// One client frame the server acts on.
    enum Request: Equatable {
        case ping
        case subscribe(String)
        case unsubscribe(String)
    }

    /// Who may subscribe to a channel, by ryOS's rules (`authorizeRealtimeChannel` in `api/_utils/realtime-auth.ts`)
    /// on this service's channels.
    enum Access: Equatable {
        /// Anyone (public channels; `presence-global` for any ticket user).
        case allowed
        /// Refused: not a valid channel name, a user's `#server-to-user-` channel, or a private or presence channel
        /// this user may not have.
        case denied
        /// A channel whose access this service decides (``ChannelAccess/isGoverned(_:)``): the ticket user may hold
        /// it if ``ChannelAccess/allows(_:user:)`` says so now, and the subscription rides on their access.
        case governed(user: String)
    }

    /// ryOS's global presence channel: any signed-in user may listen (its `user-heartbeat` events).
    static let globalPresenceChannel = "presence-global"

    static let pong = #"{"type":"pong"}"#

    static func subscriptionError(channel: String) -> String {
        JSONValue.object(["type": "subscription_error", "channel": .string(channel)]).serialized
    }

    /// An event as ryOS's client reads it; `data` as ``eventData(_:)`` makes it.
    static func event(_ event: String, channel: String, data: JSONValue?) -> String {
        JSONValue.object([
            "type": "event", "channel": .string(channel), "event": .string(event), "data": eventData(data),
        ]).serialized
    }

    /// The `data` of an event as the ryOS client expects it (a JSON value, as pusher-js would hand it over): an
    /// object or array as it is; a string holding JSON parsed; any other string as it is; none: `{}`.
    static func eventData(_ data: JSONValue?) -> JSONValue {
        switch data {
        case nil: return [:]
        case .string(let text)?: return JSONValue.parse(Array(text.utf8)) ?? .string(text)
        case let value?: return value
        }
    }

    /// Whether an event goes to ryOS sockets at all: Pusher's own (`pusher:`, `pusher_internal:`) never do.
    static func isDeliverable(_ event: String) -> Bool {
        !event.hasPrefix("pusher:") && !event.hasPrefix("pusher_internal:")
    }

    /// The frame a client sent, or `nil` when it is to be ignored.
    static func request(_ text: String) -> Request? {
        guard let message = JSONValue.parse(Array(text.utf8))?.object, let type = message["type"]?.string else { return nil }
        switch type {
        case "ping":
            return .ping
        case "subscribe":
            guard let channel = message["channel"]?.string, !channel.isEmpty else { return nil }
            return .subscribe(channel)
        case "unsubscribe":
            guard let channel = message["channel"]?.string, !channel.isEmpty else { return nil }
            return .unsubscribe(channel)
        default:
            return nil
        }
    }

    /// Who may subscribe to `channel`, `user` being the socket's ticket user (`nil`: anonymous). Like ryOS:
    /// `presence-global` for any ticket user; the private channels this service governs (`private-chats-<user>`,
    /// `private-room-<id>`, and `presence-room-<id>` as an event feed) for a ticket user with access; every other
    /// `private-` and `presence-` channel refused; everything else public.
    static func access(to channel: String, user: String?) -> Access {
        guard PusherProtocol.isValidChannel(channel), !channel.hasPrefix("#") else { return .denied }
        if channel == globalPresenceChannel { return user == nil ? .denied : .allowed }
        if ChannelAccess.isGoverned(channel) { return user.map { .governed(user: $0) } ?? .denied }
        if channel.hasPrefix("private-") || channel.hasPrefix("presence-") { return .denied }
        return .allowed
    }
}
