import Foundation
import NIOCore
import Logging
import PresenceCore
import PresenceRedis
import PresenceRealtime
import PresenceHTTP
import Redis

extension AppConfiguration {
    /// One configurable setting: its environment variable, the matching flag, its help and how to apply it.
    public struct Setting: Sendable {
        /// Environment variable name, e.g. `PORT`.
        public let name: String
        /// Value shown in `--help` as the default.
        public let defaultValue: String
        /// One line of help.
        public let help: String
        let apply: @Sendable (inout AppConfiguration, String) throws(ConfigurationError) -> Void

        /// The flag, derived from the name: `REDIS_URL` → `--redis-url`.
        public var flag: String { "--" + name.lowercased().replacingOccurrences(of: "_", with: "-") }
    }

    /// What ``load(arguments:environment:)`` decided.
    public enum LoadResult: Sendable {
        /// Start the server with this configuration.
        case run(AppConfiguration)
        /// Print this text and exit successfully (`--help`).
        case help(String)
    }

    /// Every setting, in `--help` order. Add new ones here.
    public static let settings: [Setting] = [
        Setting(name: "HOST", defaultValue: "127.0.0.1", help: "Address to listen on (0.0.0.0 for all interfaces)") {
            config, value throws(ConfigurationError) in
            guard !value.isEmpty, !value.contains(" ") else {
                throw ConfigurationError(setting: "HOST", message: "must be a host name or IP address, got '\(value)'")
            }
            config.host = value
        },
        Setting(name: "PORT", defaultValue: "8080", help: "TCP port to listen on") { config, value throws(ConfigurationError) in
            config.port = try integer(value, setting: "PORT", in: 1...65535)
        },
        Setting(name: "REDIS_URL", defaultValue: "redis://127.0.0.1:6379",
                help: "redis://[user:password@]host:port[/db], unix:///path/to/socket, or redis+cluster://[user:password@]host1:port1,host2:port2,... for a Redis Cluster (seed nodes; database 0 only)") {
            config, value throws(ConfigurationError) in
            do throws(RedisConfigurationError) {
                let parsed = try RedisConfiguration(url: value)
                config.redisURL = value
                config.redis.endpoint = parsed.endpoint
                config.redis.username = parsed.username
                config.redis.password = parsed.password
                config.redis.database = parsed.database
                config.redis.clusterSeeds = parsed.clusterSeeds
            } catch {
                throw ConfigurationError(setting: "REDIS_URL", message: error.message)
            }
        },
        Setting(name: "REDIS_TIMEOUT_MS", defaultValue: "2000",
                help: "Bounded wait for a Redis command (connection + reply), in milliseconds") {
            config, value throws(ConfigurationError) in
            let ms = try integer(value, setting: "REDIS_TIMEOUT_MS", in: 10...600_000)
            config.redis.commandTimeout = .milliseconds(Int64(ms))
            config.redis.connectTimeout = .milliseconds(Int64(ms))
        },
        Setting(name: "REDIS_CONNECTIONS", defaultValue: "2",
                help: "Multiplexed Redis connections per worker (commands are pipelined on each)") {
            config, value throws(ConfigurationError) in
            config.redis.connectionCount = try integer(value, setting: "REDIS_CONNECTIONS", in: 1...64)
        },
        Setting(name: "LOG_LEVEL", defaultValue: "info",
                help: "trace, debug, info, notice, warning, error or critical") { config, value throws(ConfigurationError) in
            guard let level = Logger.Level(rawValue: value.lowercased()) else {
                throw ConfigurationError(
                    setting: "LOG_LEVEL",
                    message: "must be one of trace, debug, info, notice, warning, error, critical; got '\(value)'"
                )
            }
            config.logLevel = level
        },
        Setting(name: "LOG_FORMAT", defaultValue: "text", help: "text or json (one JSON object per line)") {
            config, value throws(ConfigurationError) in
            guard ["text", "json"].contains(value.lowercased()) else {
                throw ConfigurationError(setting: "LOG_FORMAT", message: "must be text or json, got '\(value)'")
            }
            config.logFormat = value.lowercased()
        },
        Setting(name: "ALLOWED_ORIGINS", defaultValue: "http://localhost:*,http://127.0.0.1:*",
                help: "Comma-separated origins allowed to call the API; * = any, and * inside a pattern matches anything") {
            config, value throws(ConfigurationError) in
            let origins = list(value)
            guard !origins.isEmpty else { throw ConfigurationError(setting: "ALLOWED_ORIGINS", message: "must not be empty") }
            config.allowedOrigins = origins
        },
        Setting(name: "ADMIN_USERS", defaultValue: "(none)",
                help: "Comma-separated usernames with admin rights; these names cannot be registered, see ADMIN_PASSWORD") {
            config, value throws(ConfigurationError) in
            var admins: Set<String> = []
            for raw in list(value) {
                // `ryo` may be an admin, as ryOS expects: its account comes from ADMIN_PASSWORD like any admin's, and
                // the AI's own messages still carry isAI.
                guard let name = Validation.username(raw) else {
                    throw ConfigurationError(setting: "ADMIN_USERS", message: "'\(raw)' is not a username an account can have")
                }
                admins.insert(name)
            }
            config.chat.admins = admins
        },
        Setting(name: "ADMIN_PASSWORD", defaultValue: "(unset)",
                help: "At start-up, each ADMIN_USERS account that does not exist is created with this password (8-128 characters)") {
            config, value throws(ConfigurationError) in
            if value.isEmpty { config.adminPassword = nil; return }
            guard (8...128).contains(value.unicodeScalars.count) else {
                throw ConfigurationError(setting: "ADMIN_PASSWORD", message: "must be 8-128 characters")
            }
            config.adminPassword = value
        },
        Setting(name: "APP_PUBLIC_ORIGIN", defaultValue: "(unset)",
                help: "The origin browsers reach the service at (https://os.example): named in /app-config.js, and an https origin makes the session cookie Secure") {
            config, value throws(ConfigurationError) in
            if value.isEmpty { config.appPublicOrigin = nil; return }
            guard let url = URL(string: value), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil,
                  url.path.isEmpty || url.path == "/", url.query == nil else {
                throw ConfigurationError(setting: "APP_PUBLIC_ORIGIN", message: "must be an origin like https://os.example, got '\(value)'")
            }
            config.appPublicOrigin = value.hasSuffix("/") ? String(value.dropLast()) : value
        },
        Setting(name: "REALTIME_PROVIDER", defaultValue: "local",
                help: "The realtime provider /app-config.js names for the ryOS frontend: local (ryOS's /ws protocol) or pusher") {
            config, value throws(ConfigurationError) in
            guard ["local", "pusher"].contains(value) else {
                throw ConfigurationError(setting: "REALTIME_PROVIDER", message: "must be local or pusher, got '\(value)'")
            }
            config.realtimeProvider = value
        },
        Setting(name: "TOKEN_TTL", defaultValue: "2592000", help: "Session token lifetime in seconds, extended on each use") {
            config, value throws(ConfigurationError) in
            config.tokenTTL = .seconds(try integer(value, setting: "TOKEN_TTL", in: 60...(10 * 365 * 86400)))
        },
        Setting(name: "CHAT_PRESENCE_TTL", defaultValue: "90", help: "Seconds a chat presence lasts without a heartbeat") {
            config, value throws(ConfigurationError) in
            config.chat.presenceTTL = .seconds(try integer(value, setting: "CHAT_PRESENCE_TTL", in: 1...86400))
        },
        Setting(name: "SUPPORT_PRESENCE_TTL", defaultValue: "45", help: "Seconds a support-room presence lasts without a heartbeat") {
            config, value throws(ConfigurationError) in
            config.support.presenceTTL = .seconds(try integer(value, setting: "SUPPORT_PRESENCE_TTL", in: 1...86400))
        },
        Setting(name: "HISTORY_LIMIT", defaultValue: "1000", help: "Messages kept per chat room (older ones are trimmed)") {
            config, value throws(ConfigurationError) in
            config.chat.historyLimit = try integer(value, setting: "HISTORY_LIMIT", in: 1...1_000_000)
        },
        Setting(name: "MESSAGE_RATE_LIMIT", defaultValue: "20", help: "Messages per user per 60 s") {
            config, value throws(ConfigurationError) in
            config.chat.messageLimit = try integer(value, setting: "MESSAGE_RATE_LIMIT", in: 1...100_000)
        },
        Setting(name: "SEARCH_RATE_LIMIT", defaultValue: "60", help: "User searches per client address per 60 s") {
            config, value throws(ConfigurationError) in
            config.searchRateLimit = try integer(value, setting: "SEARCH_RATE_LIMIT", in: 1...1_000_000)
        },
        Setting(name: "LOGIN_RATE_LIMIT", defaultValue: "10", help: "Login attempts per username and client address pair per 60 s") {
            config, value throws(ConfigurationError) in
            config.loginRateLimit = try integer(value, setting: "LOGIN_RATE_LIMIT", in: 1...1_000_000)
        },
        .integer("LOGIN_USER_RATE_LIMIT", 100, in: 1...1_000_000, \.loginUserRateLimit,
                 "Login attempts per username per 60 s from addresses that never signed in as that user"),
        .integer("REGISTER_RATE_LIMIT", 20, in: 1...1_000_000, \.registerRateLimit, "Registrations per client address per hour"),
        .integer("ROOM_RATE_LIMIT", 20, in: 1...1_000_000, \.chat.roomLimit, "Rooms a user may create per hour"),
        .integer("INVITE_RATE_LIMIT", 100, in: 1...1_000_000, \.chat.inviteLimit,
                 "Other users a user may name as members of new private rooms per hour"),
        .integer("PRESENCE_RATE_LIMIT", 60, in: 1...1_000_000, \.chat.presenceLimit,
                 "Presence changes per user per 60 s (room switches, presence-channel subscribes, support joins and leaves)"),
        .integer("SUPPORT_MESSAGE_RATE_LIMIT", 30, in: 1...1_000_000, \.support.messageLimit, "Support messages per user per 60 s"),
        .integer("SUPPORT_TRANSCRIPT_LIMIT", 10000, in: 1...10_000_000, \.support.transcriptLimit,
                 "Messages a support transcript holds; new ones are refused (409) past it, never trimmed"),
        Setting(name: "LOGIN_ADDRESS_RATE_LIMIT", defaultValue: "100", help: "Login attempts per client address per 60 s") {
            config, value throws(ConfigurationError) in
            config.loginAddressRateLimit = try integer(value, setting: "LOGIN_ADDRESS_RATE_LIMIT", in: 1...1_000_000)
        },
        Setting(name: "TRUSTED_PROXIES", defaultValue: "127.0.0.0/8,::1",
                help: "Addresses or CIDR blocks whose X-Forwarded-For is believed (empty: none)") {
            config, value throws(ConfigurationError) in
            let entries = list(value)
            for entry in entries where ClientAddress.Block(entry) == nil {
                throw ConfigurationError(setting: "TRUSTED_PROXIES", message: "'\(entry)' is not an IP address or CIDR block")
            }
            config.trustedProxies = entries
        },
        Setting(name: "DEFAULT_ROOMS", defaultValue: "general,random", help: "Public rooms created at start-up when missing") {
            config, value throws(ConfigurationError) in
            let rooms = list(value)
            for room in rooms where !Validation.isNewChatRoomID(room.lowercased().replacingOccurrences(of: " ", with: "-")) {
                throw ConfigurationError(setting: "DEFAULT_ROOMS", message: "'\(room)' is not a valid chat room id (ticket_ is reserved)")
            }
            config.chat.defaultRooms = rooms
        },
        Setting(name: "AI_BASE_URL", defaultValue: "(unset: offline responder)",
                help: "OpenAI-compatible API base URL for Ryo's replies, e.g. https://api.openai.com/v1") {
            config, value throws(ConfigurationError) in
            if value.isEmpty { config.ai.baseURL = nil; return }
            guard let url = URL(string: value), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
                throw ConfigurationError(setting: "AI_BASE_URL", message: "must be an http(s) URL, got '\(value)'")
            }
            config.ai.baseURL = value
        },
        Setting(name: "AI_API_KEY", defaultValue: "(unset)", help: "Bearer key for the AI API") {
            config, value throws(ConfigurationError) in
            config.ai.apiKey = value.isEmpty ? nil : value
        },
        Setting(name: "AI_MODEL", defaultValue: "gpt-4o-mini", help: "Model name sent to the AI API") {
            config, value throws(ConfigurationError) in
            guard !value.isEmpty else { throw ConfigurationError(setting: "AI_MODEL", message: "must not be empty") }
            config.ai.model = value
        },
        Setting(name: "AI_TIMEOUT", defaultValue: "20", help: "Seconds to wait for the AI API") {
            config, value throws(ConfigurationError) in
            config.ai.timeout = .seconds(try integer(value, setting: "AI_TIMEOUT", in: 1...600))
        },
        Setting(name: "AI_RATE_LIMIT", defaultValue: "5", help: "Ryo replies per user per AI_RATE_WINDOW") {
            config, value throws(ConfigurationError) in
            config.ai.rateLimit = try integer(value, setting: "AI_RATE_LIMIT", in: 1...100_000)
        },
        Setting(name: "AI_RATE_WINDOW", defaultValue: "60", help: "Seconds of the Ryo reply sliding window") {
            config, value throws(ConfigurationError) in
            config.ai.rateWindow = .seconds(try integer(value, setting: "AI_RATE_WINDOW", in: 1...86400))
        },
        Setting(name: "PUSHER_APP_ID", defaultValue: "presence", help: "Pusher app id (HTTP API path /apps/<id>)") {
            config, value throws(ConfigurationError) in
            guard !value.isEmpty, !value.contains("/") else { throw ConfigurationError(setting: "PUSHER_APP_ID", message: "must be a non-empty id") }
            config.pusher.appId = value
        },
        Setting(name: "PUSHER_KEY", defaultValue: "presence-key (development)", help: "Pusher app key clients connect with") {
            config, value throws(ConfigurationError) in
            guard !value.isEmpty, !value.contains("/") else { throw ConfigurationError(setting: "PUSHER_KEY", message: "must be a non-empty key") }
            config.pusher.key = value
        },
        Setting(name: "PUSHER_SECRET", defaultValue: "presence-secret (development)", help: "Pusher app secret (signs channel auth and the HTTP API)") {
            config, value throws(ConfigurationError) in
            guard value.count >= 8 else { throw ConfigurationError(setting: "PUSHER_SECRET", message: "must be at least 8 characters") }
            config.pusher.secret = value
        },
        Setting(name: "SWEEP_INTERVAL_MS", defaultValue: "1000", help: "How often each worker looks for expired presence") {
            config, value throws(ConfigurationError) in
            config.sweepInterval = .milliseconds(try integer(value, setting: "SWEEP_INTERVAL_MS", in: 50...60_000))
        },
        Setting(name: "BCRYPT_COST", defaultValue: "10", help: "bcrypt work factor for passwords (4-15)") {
            config, value throws(ConfigurationError) in
            config.bcryptCost = UInt8(try integer(value, setting: "BCRYPT_COST", in: 4...15))
        },
        .seconds("SHUTDOWN_TIMEOUT", 10, in: 1...300, \.shutdownTimeout,
                 "Seconds a stop (SIGTERM/SIGINT) may take: sockets closed with 4200, requests finished, Redis closed"),
        .seconds("HEADER_TIMEOUT", 10, in: 1...300, \.connections.headerTimeout,
                 "Seconds a request head may take from its first byte (and a new connection to start one); 408 after"),
        .seconds("IDLE_TIMEOUT", 60, in: 1...3600, \.connections.idleTimeout, "Seconds an idle keep-alive connection stays open"),
        .seconds("BODY_TIMEOUT", 10, in: 1...300, \.connections.bodyTimeout,
                 "Window, in seconds, over which a request body must arrive at BODY_MIN_RATE; 408 after"),
        .integer("BODY_MIN_RATE", 1024, in: 1...100_000_000, \.connections.bodyMinRate, "Minimum request body rate, bytes per second"),
        .integer("MAX_HEADER_BYTES", 32768, in: 1024...1_048_576, \.connections.maxHeaderBytes,
                 "Largest request head (request line and headers); 431 beyond (414 for a request line over 8 KiB)"),
        .integer("MAX_CONNECTIONS", 10000, in: 1...10_000_000, \.connections.maxConnections,
                 "Open connections (HTTP and WebSocket) per worker; 503 or WebSocket close 4004 beyond"),
        .integer("MAX_CONNECTIONS_PER_ADDRESS", 100, in: 1...10_000_000, \.connections.maxConnectionsPerAddress,
                 "Open connections per client address per worker (behind TRUSTED_PROXIES: per X-Forwarded-For client)"),
        .integer("ACTIVITY_TIMEOUT", 120, in: 1...3600, \.pusher.activityTimeout,
                 "Seconds of WebSocket silence before a pusher:ping (sent to clients as activity_timeout)"),
        Setting(name: "METRICS_HOST", defaultValue: "127.0.0.1", help: "Address of the /metrics listener (keep it private)") {
            config, value throws(ConfigurationError) in
            guard !value.isEmpty, !value.contains(" ") else {
                throw ConfigurationError(setting: "METRICS_HOST", message: "must be a host name or IP address, got '\(value)'")
            }
            config.metricsHost = value
        },
        Setting(name: "METRICS_PORT", defaultValue: "PORT + 1384 (9464 for 8080)",
                help: "Port of the /metrics listener (0: no metrics listener); unset, each worker's follows its PORT") {
            config, value throws(ConfigurationError) in
            config.metricsPort = try integer(value, setting: "METRICS_PORT", in: 0...65535)
        },
        Setting(name: "WEBHOOK_URLS", defaultValue: "(unset: no webhooks)",
                help: "Comma-separated webhook receivers, each URL or URL|event+event (channel_occupied, channel_vacated, member_added, member_removed, client_event, cache_miss)") {
            config, value throws(ConfigurationError) in
            do throws(WebhookConfigurationError) {
                config.webhooks.targets = try WebhookTarget.parse(value)
            } catch {
                throw ConfigurationError(setting: "WEBHOOK_URLS", message: error.message)
            }
        },
        .milliseconds("WEBHOOK_TIMEOUT_MS", 5000, in: 100...120_000, \.webhooks.timeout,
                      "Milliseconds one webhook POST may take before it is retried; must fit the lease: WEBHOOK_TIMEOUT_MS + min(WEBHOOK_LEASE_MS / 4, 2000) + 250 <= WEBHOOK_LEASE_MS"),
        .milliseconds("WEBHOOK_MAX_BACKOFF_MS", 30000, in: 250...3_600_000, \.webhooks.maxBackoff,
                      "Longest wait between webhook retries (they start at 250 ms and double)"),
        .integer("WEBHOOK_BATCH_SIZE", 100, in: 1...1000, \.webhooks.batchSize, "Most events in one webhook POST"),
        .integer("WEBHOOK_OUTBOX_MAX", 100_000, in: 10...10_000_000, \.webhooks.outboxMax,
                 "Undelivered webhook events kept per receiver and outbox shard (16 shards); past it the oldest are dropped and counted"),
        .integer("WEBHOOK_OUTBOX_MAX_BYTES", 16 << 20, in: 32_768...(1 << 36), \.webhooks.outboxMaxBytes,
                 "Bytes of Redis memory one receiver's outbox shard may take (16 shards); past it the oldest events are dropped and counted, and an event over an eighth of it is never written (webhook_events_oversized_total)"),
        .milliseconds("WEBHOOK_LEASE_MS", 10000, in: 1000...600_000, \.webhooks.lease,
                      "How long a worker's claim on an outbox shard lasts unrenewed: a dead worker's undelivered events pass to another after this"),
        .integer("OCCUPANCY_TTL", 60, in: 3...3600, \.pusher.occupancyTTL, "Seconds a WebSocket subscription counts without its worker refreshing it (a dead worker's channels are vacated after this)"),
        .integer("PONG_TIMEOUT", 30, in: 1...3600, \.pusher.pongTimeout, "Seconds a pinged WebSocket has to answer; closed with 4201 after"),
        .integer("PUSHER_SIGNIN_TIMEOUT", 0, in: 0...3600, \.pusher.signinTimeout, "Seconds a WebSocket has to sign in (pusher:signin) before it is closed with 4009; 0: sign-in optional"),
        .integer("PUSHER_MAX_EVENT_BYTES", 10240, in: 1...60_000, \.pusher.maxEventBytes,
                 "Bytes of data one event may carry (Pusher's 10 KB): client events beyond get pusher:error 4301, HTTP API events 413"),
        .integer("PUSHER_MAX_EVENT_NAME", 200, in: 1...1000, \.pusher.maxEventName,
                 "Characters of an event name (Pusher's 200): client events beyond get pusher:error 4301, HTTP API events 400"),
        .integer("PUSHER_MAX_CHANNEL_NAME", 164, in: 32...1000, \.pusher.maxChannelName,
                 "Characters of a channel name (Pusher's 164), #server-to-user-<id> included: a subscribe beyond gets pusher:subscription_error LimitReached, /pusher/auth and the HTTP API 400"),
        .integer("PUSHER_MAX_PRESENCE_MEMBERS", 100, in: 1...100_000, \.pusher.maxPresenceMembers,
                 "Members of an app's presence channel (Pusher's 100; a new one beyond gets pusher:subscription_error 4100); room-backed presence-room-<id> channels take everyone and list at most this many on subscribing, with the true count"),
        .integer("PUSHER_MAX_USER_INFO_BYTES", 1024, in: 1...60_000, \.pusher.maxUserInfoBytes,
                 "Bytes of a presence member's user_info (Pusher's 1 KB): a subscribe beyond gets pusher:subscription_error 4301"),
        Setting(name: "WEBSOCKET_ECHO_PATH", defaultValue: "(unset: none)",
                help: "Test-only: a path (/echo) whose WebSocket sends every text and binary message back; for the conformance tests, never in production") {
            config, value throws(ConfigurationError) in
            if value.isEmpty { config.websocketEchoPath = nil; return }
            guard value.hasPrefix("/"), value.count > 1, value != "/ws", !value.hasPrefix("/app/"),
                  !value.contains(where: { $0 == "?" || $0 == "#" || $0.isWhitespace }) else {
                throw ConfigurationError(
                    setting: "WEBSOCKET_ECHO_PATH", message: "must be a path like /echo (not /ws or under /app/), got '\(value)'"
                )
            }
            config.websocketEchoPath = value
        },
    ]

    static func list(_ value: String) -> [String] {
        value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Builds the configuration from command-line arguments (without the program name) and the environment.
    /// Flags win over environment variables, which win over defaults. Accepts `--flag value` and `--flag=value`.
    public static func load(arguments: [String], environment: [String: String]) throws(ConfigurationError) -> LoadResult {
        var flags: [String: String] = [:]
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--help" || argument == "-h" { return .help(helpText) }
            guard argument.hasPrefix("--") else {
                throw ConfigurationError(setting: argument, message: "unexpected argument (see --help)")
            }
            var flag = argument
            var value: String?
            if let eq = argument.firstIndex(of: "=") {
                flag = String(argument[..<eq])
                value = String(argument[argument.index(after: eq)...])
            }
            guard let setting = settings.first(where: { $0.flag == flag }) else {
                throw ConfigurationError(setting: flag, message: "unknown option (see --help)")
            }
            if value == nil {
                index += 1
                guard index < arguments.count else {
                    throw ConfigurationError(setting: setting.name, message: "\(flag) needs a value")
                }
                value = arguments[index]
            }
            flags[setting.name] = value
            index += 1
        }
        var config = AppConfiguration()
        for setting in settings {
            if let value = flags[setting.name] ?? environment[setting.name] {
                try setting.apply(&config, value)
            }
        }
        // Settings that must agree with each other, once all are applied.
        if let problem = config.webhooks.timeoutProblem {
            throw ConfigurationError(setting: "WEBHOOK_TIMEOUT_MS", message: problem)
        }
        if let problem = config.webhooks.outboxBytesProblem {
            throw ConfigurationError(setting: "WEBHOOK_OUTBOX_MAX_BYTES", message: problem)
        }
        return .run(config)
    }

    /// The `--help` text: usage and every setting with its flag, variable and default.
    public static var helpText: String {
        var lines = [
            "Usage: presence-server [options]",
            "",
            "Realtime presence and rooms service. Every option can also be set by its environment variable;",
            "a flag wins over the variable.",
            "",
            "Options:",
        ]
        let width = settings.map { "\($0.flag) <value>".count }.max() ?? 0
        for setting in settings {
            let left = "\(setting.flag) <value>".padding(toLength: width, withPad: " ", startingAt: 0)
            lines.append("  \(left)  \(setting.help)")
            lines.append("  \(String(repeating: " ", count: width))  env \(setting.name), default \(setting.defaultValue)")
        }
        lines.append("  --help".padding(toLength: width + 2, withPad: " ", startingAt: 0) + "  Show this help")
        return lines.joined(separator: "\n")
    }

    static func integer(_ value: String, setting: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard let number = Int(value.trimmingCharacters(in: .whitespaces)), range.contains(number) else {
            throw ConfigurationError(
                setting: setting,
                message: "must be an integer from \(range.lowerBound) to \(range.upperBound), got '\(value)'"
            )
        }
        return number
    }
}

extension AppConfiguration.Setting {
    /// A whole number in `range`, stored at `keyPath`.
    static func integer(
        _ name: String, _ defaultValue: Int, in range: ClosedRange<Int>,
        _ keyPath: any WritableKeyPath<AppConfiguration, Int> & Sendable, _ help: String
    ) -> AppConfiguration.Setting {
        AppConfiguration.Setting(name: name, defaultValue: String(defaultValue), help: help) { config, value throws(ConfigurationError) in
            config[keyPath: keyPath] = try AppConfiguration.integer(value, setting: name, in: range)
        }
    }

    /// Whole seconds in `range`, stored at `keyPath` as a duration.
    static func milliseconds(
        _ name: String, _ defaultValue: Int, in range: ClosedRange<Int>,
        _ keyPath: any WritableKeyPath<AppConfiguration, Duration> & Sendable, _ help: String
    ) -> AppConfiguration.Setting {
        AppConfiguration.Setting(name: name, defaultValue: String(defaultValue), help: help) { config, value throws(ConfigurationError) in
            config[keyPath: keyPath] = .milliseconds(try AppConfiguration.integer(value, setting: name, in: range))
        }
    }

    static func seconds(
        _ name: String, _ defaultValue: Int, in range: ClosedRange<Int>,
        _ keyPath: any WritableKeyPath<AppConfiguration, Duration> & Sendable, _ help: String
    ) -> AppConfiguration.Setting {
        AppConfiguration.Setting(name: name, defaultValue: String(defaultValue), help: help) { config, value throws(ConfigurationError) in
            config[keyPath: keyPath] = .seconds(try AppConfiguration.integer(value, setting: name, in: range))
        }
    }
}
