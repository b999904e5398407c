import Foundation
import Logging
import PresenceCore
import PresenceRedis
import PresenceRealtime
import PresenceHTTP
import Redis

/// Everything the server reads at start-up. Each setting comes from a command-line flag, else an environment
/// variable, else its default (see ``AppConfiguration/settings`` and `presence-server --help`).
///
/// Defaults are written once, in the settings table: ``init()`` applies each setting's ``Setting/defaultValue``, so
/// the values below have none of their own (docs/configuration.md is generated from the same table).
public struct AppConfiguration: Sendable {
    /// Address to listen on (`HOST`).
    public var host: String
    /// Port to listen on (`PORT`).
    public var port: Int
    /// The Redis URL as given (`REDIS_URL`); parsed into ``redis``.
    public var redisURL: String
    /// Parsed Redis settings (endpoint, credentials, database, bounded wait, connection count).
    public var redis: RedisConfiguration
    /// Log level (`LOG_LEVEL`).
    public var logLevel: Logger.Level
    /// `text` or `json` log lines (`LOG_FORMAT`).
    public var logFormat: String
    /// Chat rules: presence TTL, history size, admins, message limit, default rooms.
    public var chat = ChatSettings()
    /// Ryo replies: the model (none = the offline responder) and the per-user limiter.
    public var ai: AISettings
    /// The Pusher app (credentials, protocol limits).
    public var pusher = PusherSettings()
    /// Support rules: presence TTL (admins and history size follow the chat settings).
    public var support = SupportSettings()
    /// `WEBHOOK_*`: Pusher-format webhooks (off unless `WEBHOOK_URLS` names a receiver).
    public var webhooks = WebhookSettings()
    /// Recoverable channels (`RECOVERY_*`).
    public var recovery = RecoveryPolicy()
    /// Origin patterns allowed to call the API (`ALLOWED_ORIGINS`); `*` in a pattern matches anything.
    public var allowedOrigins: [String]
    /// Session token lifetime, extended on each use (`TOKEN_TTL`, seconds).
    public var tokenTTL: Duration
    /// Searches per client address per minute (`SEARCH_RATE_LIMIT`).
    public var searchRateLimit: Int
    /// Login attempts per (username, client address) pair per 60 s (`LOGIN_RATE_LIMIT`).
    public var loginRateLimit: Int
    /// Login attempts per username per 60 s from addresses it never signed in from (`LOGIN_USER_RATE_LIMIT`).
    public var loginUserRateLimit: Int
    /// Registrations per client address per hour (`REGISTER_RATE_LIMIT`).
    public var registerRateLimit: Int
    /// The password admin accounts missing at start-up are created with (`ADMIN_PASSWORD`); `nil`: none created.
    public var adminPassword: String?
    /// The origin browsers reach the service at (`APP_PUBLIC_ORIGIN`), e.g. `https://os.example`: the ryOS runtime
    /// configuration names it, and an `https` origin marks the session cookie `Secure`. `nil`: the request's own.
    public var appPublicOrigin: String?
    /// Which realtime provider `GET /app-config.js` tells the ryOS frontend to use (`REALTIME_PROVIDER`):
    /// `local` (ryOS's own `/ws` protocol) or `pusher` (this service's Pusher-protocol socket).
    public var realtimeProvider: String
    /// Where `/metrics` is served (`METRICS_HOST`, `METRICS_PORT`); port 0: not served.
    public var metricsHost: String
    /// `METRICS_PORT` as given; `nil`: derived from the API port (``effectiveMetricsPort``).
    public var metricsPort: Int?
    /// Test-only: the path of a WebSocket that echoes every message back (`WEBSOCKET_ECHO_PATH`, e.g. `/echo`), for the
    /// conformance cases (docs/websocket-conformance.md). `nil`: no such socket.
    public var websocketEchoPath: String?

    /// The port of the `/metrics` listener: `METRICS_PORT`, or `PORT + 1384` (``metricsPortOffset``) when unset, so workers
    /// started by hand on one host with only `PORT` set each get their own. 0: no listener.
    public var effectiveMetricsPort: Int {
        if let metricsPort { return metricsPort }
        let derived = port + Self.metricsPortOffset
        return derived <= 65535 ? derived : 0
    }

    /// The distance of the default metrics port from the API port.
    public static let metricsPortOffset = 1384
    /// Login attempts per client address per 60 s (`LOGIN_ADDRESS_RATE_LIMIT`).
    public var loginAddressRateLimit: Int
    /// Peers whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`): addresses or CIDR blocks.
    public var trustedProxies: [String]
    /// How often each worker's sweeper looks for expired presence (`SWEEP_INTERVAL_MS`).
    public var sweepInterval: Duration
    /// bcrypt work factor (`BCRYPT_COST`).
    public var bcryptCost: UInt8
    /// What one connection may take: deadlines, header size, connections per worker and per address.
    public var connections = ConnectionSettings()
    /// The longest a stop may take from SIGTERM to exit (`SHUTDOWN_TIMEOUT`, seconds).
    public var shutdownTimeout: Duration

    /// The defaults, as `presence-server` starts with no flags and no environment: every setting's
    /// ``Setting/defaultValue`` from ``settings`` applied in table order.
    public init() {
        self = Self.defaults
    }

    /// ``unset()`` with every table default applied; computed once.
    static let defaults: AppConfiguration = {
        var config = AppConfiguration.unset()
        for setting in settings {
            guard let value = setting.defaultValue else { continue }
            do throws(ConfigurationError) {
                try setting.apply(&config, value)
            } catch {
                preconditionFailure("the settings table's default for \(setting.name) is refused: \(error)")
            }
        }
        return config
    }()

    /// Placeholders only, never served: ``defaults`` overwrites each field the table sets. A field a setting
    /// leaves unset by default (`nil` here) stays so.
    private static func unset() -> AppConfiguration {
        AppConfiguration(
            host: "", port: 0, redisURL: "", redis: RedisConfiguration(endpoint: .tcp(host: "", port: 0)),
            logLevel: .info, logFormat: "", ai: AISettings(model: "", timeout: .zero, rateLimit: 0, rateWindow: .zero),
            allowedOrigins: [], tokenTTL: .zero, searchRateLimit: 0, loginRateLimit: 0, loginUserRateLimit: 0,
            registerRateLimit: 0, realtimeProvider: "", metricsHost: "", loginAddressRateLimit: 0, trustedProxies: [],
            sweepInterval: .zero, bcryptCost: 0, shutdownTimeout: .zero
        )
    }

    private init(
        host: String, port: Int, redisURL: String, redis: RedisConfiguration, logLevel: Logger.Level, logFormat: String,
        ai: AISettings, allowedOrigins: [String], tokenTTL: Duration, searchRateLimit: Int, loginRateLimit: Int,
        loginUserRateLimit: Int, registerRateLimit: Int, realtimeProvider: String, metricsHost: String,
        loginAddressRateLimit: Int, trustedProxies: [String], sweepInterval: Duration, bcryptCost: UInt8,
        shutdownTimeout: Duration
    ) {
        self.host = host
        self.port = port
        self.redisURL = redisURL
        self.redis = redis
        self.logLevel = logLevel
        self.logFormat = logFormat
        self.ai = ai
        self.allowedOrigins = allowedOrigins
        self.tokenTTL = tokenTTL
        self.searchRateLimit = searchRateLimit
        self.loginRateLimit = loginRateLimit
        self.loginUserRateLimit = loginUserRateLimit
        self.registerRateLimit = registerRateLimit
        self.realtimeProvider = realtimeProvider
        self.metricsHost = metricsHost
        self.loginAddressRateLimit = loginAddressRateLimit
        self.trustedProxies = trustedProxies
        self.sweepInterval = sweepInterval
        self.bcryptCost = bcryptCost
        self.shutdownTimeout = shutdownTimeout
    }
}
