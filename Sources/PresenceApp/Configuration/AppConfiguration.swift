import Foundation
import Logging
import PresenceCore
import PresenceRedis
import PresenceRealtime
import PresenceHTTP
import Redis

/// Everything the server reads at start-up. Each setting comes from a command-line flag, else an environment
/// variable, else its default (see ``AppConfiguration/settings`` and `presence-server --help`).
public struct AppConfiguration: Sendable {
    /// Address to listen on (`HOST`).
    public var host: String = "127.0.0.1"
    /// Port to listen on (`PORT`).
    public var port: Int = 8080
    /// The Redis URL as given (`REDIS_URL`); parsed into ``redis``.
    public var redisURL: String = "redis://127.0.0.1:6379"
    /// Parsed Redis settings (endpoint, credentials, database, bounded wait, connection count).
    public var redis: RedisConfiguration
    /// Log level (`LOG_LEVEL`).
    public var logLevel: Logger.Level = .info
    /// `text` (default) or `json` log lines (`LOG_FORMAT`).
    public var logFormat: String = "text"
    /// Chat rules: presence TTL, history size, admins, message limit, default rooms.
    public var chat = ChatSettings()
    /// Ryo replies: the model (none = the offline responder) and the per-user limiter.
    public var ai = AISettings()
    /// The Pusher app (credentials, protocol limits).
    public var pusher = PusherSettings()
    /// Support rules: presence TTL (admins and history size follow the chat settings).
    public var support = SupportSettings()
    /// `WEBHOOK_*`: Pusher-format webhooks (off unless `WEBHOOK_URLS` names a receiver).
    public var webhooks = WebhookSettings()
    /// Origin patterns allowed to call the API (`ALLOWED_ORIGINS`); `*` in a pattern matches anything.
    public var allowedOrigins: [String] = ["http://localhost:*", "http://127.0.0.1:*"]
    /// Session token lifetime, extended on each use (`TOKEN_TTL`, seconds).
    public var tokenTTL: Duration = .seconds(30 * 24 * 3600)
    /// Searches per client address per minute (`SEARCH_RATE_LIMIT`).
    public var searchRateLimit: Int = 60
    /// Login attempts per (username, client address) pair per 60 s (`LOGIN_RATE_LIMIT`).
    public var loginRateLimit: Int = 10
    /// Login attempts per username per 60 s from addresses it never signed in from (`LOGIN_USER_RATE_LIMIT`).
    public var loginUserRateLimit: Int = 100
    /// Registrations per client address per hour (`REGISTER_RATE_LIMIT`).
    public var registerRateLimit: Int = 20
    /// The password admin accounts missing at start-up are created with (`ADMIN_PASSWORD`); `nil`: none created.
    public var adminPassword: String?
    /// The origin browsers reach the service at (`APP_PUBLIC_ORIGIN`), e.g. `https://os.example`: the ryOS runtime
    /// configuration names it, and an `https` origin marks the session cookie `Secure`. `nil`: the request's own.
    public var appPublicOrigin: String?
    /// Which realtime provider `GET /app-config.js` tells the ryOS frontend to use (`REALTIME_PROVIDER`):
    /// `local` (ryOS's own `/ws` protocol) or `pusher` (this service's Pusher-protocol socket).
    public var realtimeProvider: String = "local"
    /// Where `/metrics` is served (`METRICS_HOST`, `METRICS_PORT`); port 0: not served.
    public var metricsHost: String = "127.0.0.1"
    /// `METRICS_PORT` as given; `nil`: derived from the API port (``effectiveMetricsPort``).
    public var metricsPort: Int?
    /// Test-only: the path of a WebSocket that echoes every message back (`WEBSOCKET_ECHO_PATH`, e.g. `/echo`), for the
    /// conformance cases (docs/websocket-conformance.md). `nil`, the default: no such socket.
    public var websocketEchoPath: String?

    /// The port of the `/metrics` listener: `METRICS_PORT`, or `PORT + 1384` (9464 for 8080) when unset, so workers
    /// started by hand on one host with only `PORT` set each get their own. 0: no listener.
    public var effectiveMetricsPort: Int {
        if let metricsPort { return metricsPort }
        let derived = port + Self.metricsPortOffset
        return derived <= 65535 ? derived : 0
    }

    /// The distance of the default metrics port from the API port.
    public static let metricsPortOffset = 1384
    /// Login attempts per client address per 60 s.
    public var loginAddressRateLimit: Int = 100
    /// Peers whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`): addresses or CIDR blocks.
    public var trustedProxies: [String] = ["127.0.0.0/8", "::1"]
    /// How often each worker's sweeper looks for expired presence (`SWEEP_INTERVAL_MS`).
    public var sweepInterval: Duration = .seconds(1)
    /// bcrypt work factor (`BCRYPT_COST`).
    public var bcryptCost: UInt8 = 10
    /// What one connection may take: deadlines, header size, connections per worker and per address.
    public var connections = ConnectionSettings()
    /// The longest a stop may take from SIGTERM to exit (`SHUTDOWN_TIMEOUT`, seconds).
    public var shutdownTimeout: Duration = .seconds(10)

    /// The defaults, as `presence-server` starts with no flags and no environment.
    public init() {
        // The default URL always parses.
        self.redis = (try? RedisConfiguration(url: "redis://127.0.0.1:6379"))!
    }
}
