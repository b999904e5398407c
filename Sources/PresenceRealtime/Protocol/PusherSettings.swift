/// The Pusher app this service impersonates, and the protocol's limits.
public struct PusherSettings: Sendable {
    /// `PUSHER_APP_ID`.
    public var appId: String = "presence"
    /// `PUSHER_KEY`: the key clients connect with (`/app/<key>`).
    public var key: String = "presence-key"
    /// `PUSHER_SECRET`: signs channel auth and HTTP API requests.
    public var secret: String = "presence-secret"
    /// Seconds of silence after which either side pings (`ACTIVITY_TIMEOUT`, sent to clients as `activity_timeout`).
    public var activityTimeout: Int = 120
    /// Seconds a pinged client has to answer before it is closed with 4201 (`PONG_TIMEOUT`).
    public var pongTimeout: Int = 30
    /// Seconds a socket's subscription counts without its worker refreshing it (`OCCUPANCY_TTL`): after a worker dies,
    /// its channels are vacated (and `channel_vacated` sent) within about this.
    public var occupancyTTL: Int = 60
    /// Messages waiting for a slow client before it is closed (4100).
    public var maxQueuedMessages: Int = 1000
    /// Channels one connection may be subscribed to at once (`pusher:subscription_error` 429 beyond).
    public var maxChannelsPerSocket: Int = 100
    /// Client events per second per connection (4301 beyond).
    public var clientEventsPerSecond: Int = 10
    /// Seconds a new connection has to sign in (`pusher:signin`) before it is closed with 4009
    /// (`PUSHER_SIGNIN_TIMEOUT`; 0, the default: sign-in is optional).
    public var signinTimeout: Int = 0
    /// Bytes of `data` one event may carry, client events and the HTTP API alike (`PUSHER_MAX_EVENT_BYTES`; Pusher's
    /// 10 KB): a larger client event gets `pusher:error` 4301, a larger API event 413.
    public var maxEventBytes: Int = 10 * 1024
    /// Characters of an event name (`PUSHER_MAX_EVENT_NAME`; Pusher's 200).
    public var maxEventName: Int = 200
    /// Characters of a channel name (`PUSHER_MAX_CHANNEL_NAME`; Pusher's 164), `#server-to-user-<id>` included.
    public var maxChannelName: Int = 164
    /// Members of an app's presence channel (`PUSHER_MAX_PRESENCE_MEMBERS`; Pusher's 100): a new member beyond is
    /// refused. Room-backed channels (`presence-room-<id>`, `presence-global`) take everyone, and list at most this
    /// many members in `pusher_internal:subscription_succeeded`, with the true `count`.
    public var maxPresenceMembers: Int = 100
    /// Bytes of a presence member's `user_info` (`PUSHER_MAX_USER_INFO_BYTES`; Pusher's 1 KB).
    public var maxUserInfoBytes: Int = 1024

    /// `true` while the development defaults are in use.
    public var usesDevelopmentDefaults: Bool { key == "presence-key" || secret == "presence-secret" }

    public init() {}
}
