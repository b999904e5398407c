import Logging
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

    /// The defaults, as `presence-server` starts with no flags and no environment.
    public init() {
        // The default URL always parses.
        self.redis = (try? RedisConfiguration(url: "redis://127.0.0.1:6379"))!
    }
}
