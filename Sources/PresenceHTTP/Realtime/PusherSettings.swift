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

    /// `true` while the development defaults are in use.
    public var usesDevelopmentDefaults: Bool { key == "presence-key" || secret == "presence-secret" }

    public init() {}
}
