import Foundation
import NIOCore
import Logging
import PresenceCore
import PresenceRedis
import PresenceRealtime
import PresenceHTTP
import Redis

extension AppConfiguration {
    /// One configurable setting: its environment variable, the matching flag, its default, its help and how to apply
    /// it. The table of these (``AppConfiguration/settings``) is the one place a default is written: ``init()``
    /// applies it, `--help` and docs/configuration.md show it.
    public struct Setting: Sendable {
        /// Environment variable name, e.g. `PORT`.
        public let name: String
        /// The value the server applies when neither the flag nor the variable is given, written as the flag would
        /// take it (`8080`, `general,random`); `nil`: the setting stays unset (``defaultNote`` says what that means).
        public let defaultValue: String?
        /// A word on the default: what unset means (`offline responder`), or a caveat on the value (`development`).
        public let defaultNote: String?
        /// The whole numbers accepted, for a numeric setting; `nil` for the others.
        public let range: ClosedRange<Int>?
        /// One line of help.
        public let help: String
        let apply: @Sendable (inout AppConfiguration, String) throws(ConfigurationError) -> Void

        init(
            name: String, defaultValue: String?, defaultNote: String? = nil, range: ClosedRange<Int>? = nil, help: String,
            apply: @escaping @Sendable (inout AppConfiguration, String) throws(ConfigurationError) -> Void
        ) {
            self.name = name
            self.defaultValue = defaultValue
            self.defaultNote = defaultNote
            self.range = range
            self.help = help
            self.apply = apply
        }

        /// The flag, derived from the name: `REDIS_URL` → `--redis-url`.
        public var flag: String { "--" + name.lowercased().replacingOccurrences(of: "_", with: "-") }

        /// The default as `--help` and docs/configuration.md show it: `8080`, `presence-key (development)`,
        /// `(unset)`, `(unset: offline responder)`.
        public var shownDefault: String {
            switch (defaultValue, defaultNote) {
            case let (value?, note?): "\(value) (\(note))"
            case let (value?, nil): value
            case let (nil, note?): "(unset: \(note))"
            case (nil, nil): "(unset)"
            }
        }
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
        .integer("PORT", 8080, in: 1...65535, \.port, "TCP port to listen on"),
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
        .number("REDIS_TIMEOUT_MS", 2000, in: 10...600_000,
                "Bounded wait for a Redis command (connection + reply), in milliseconds") { config, ms in
            config.redis.commandTimeout = .milliseconds(Int64(ms))
            config.redis.connectTimeout = .milliseconds(Int64(ms))
        },
        .number("REDIS_CONNECTIONS", 2, in: 1...64, "Multiplexed Redis connections per worker (commands are pipelined on each)") {
            config, count in
            config.redis.connectionCount = count
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
        Setting(name: "ADMIN_USERS", defaultValue: nil, defaultNote: "no admins",
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
        Setting(name: "ADMIN_PASSWORD", defaultValue: nil, defaultNote: "no accounts created",
                help: "At start-up, each ADMIN_USERS account that does not exist is created with this password (8-128 characters)") {
            config, value throws(ConfigurationError) in
            if value.isEmpty { config.adminPassword = nil; return }
            guard (8...128).contains(value.unicodeScalars.count) else {
                throw ConfigurationError(setting: "ADMIN_PASSWORD", message: "must be 8-128 characters")
            }
            config.adminPassword = value
        },
        Setting(name: "APP_PUBLIC_ORIGIN", defaultValue: nil, defaultNote: "each request's own origin",
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
        .seconds("TOKEN_TTL", 30 * 86400, in: 60...(10 * 365 * 86400), \.tokenTTL,
                 "Session token lifetime in seconds, extended on each use"),
        .seconds("CHAT_PRESENCE_TTL", 90, in: 1...86400, \.chat.presenceTTL, "Seconds a chat presence lasts without a heartbeat"),
        .seconds("SUPPORT_PRESENCE_TTL", 45, in: 1...86400, \.support.presenceTTL,
                 "Seconds a support-room presence lasts without a heartbeat"),
        .integer("HISTORY_LIMIT", 1000, in: 1...1_000_000, \.chat.historyLimit, "Messages kept per chat room (older ones are trimmed)"),
        .integer("MESSAGE_RATE_LIMIT", 20, in: 1...100_000, \.chat.messageLimit, "Messages per user per 60 s"),
        .integer("SEARCH_RATE_LIMIT", 60, in: 1...1_000_000, \.searchRateLimit, "User searches per client address per 60 s"),
        .integer("LOGIN_RATE_LIMIT", 10, in: 1...1_000_000, \.loginRateLimit,
                 "Login attempts per username and client address pair per 60 s"),
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
        .seconds("SUPPORT_UNATTENDED_AFTER", 60, in: 1...86400, \.support.unattendedAfter,
                 "Seconds a ticket's customer waits with no agent present before ticket-unattended and the ticket_unattended webhook go out"),
        .integer("SUPPORT_ATTENDANCE_LIMIT", 10000, in: 1...100_000, \.support.attendanceLimit,
                 "Attendance intervals a support ticket keeps (joins to leaves, with role and reason); the oldest are trimmed past it"),
        .integer("LOGIN_ADDRESS_RATE_LIMIT", 100, in: 1...1_000_000, \.loginAddressRateLimit,
                 "Login attempts per client address per 60 s"),
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
        Setting(name: "AI_BASE_URL", defaultValue: nil, defaultNote: "the offline responder",
                help: "OpenAI-compatible API base URL for Ryo's replies, e.g. https://api.openai.com/v1") {
            config, value throws(ConfigurationError) in
            if value.isEmpty { config.ai.baseURL = nil; return }
            guard let url = URL(string: value), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
                throw ConfigurationError(setting: "AI_BASE_URL", message: "must be an http(s) URL, got '\(value)'")
            }
            config.ai.baseURL = value
        },
        Setting(name: "AI_API_KEY", defaultValue: nil, help: "Bearer key for the AI API") {
            config, value throws(ConfigurationError) in
            config.ai.apiKey = value.isEmpty ? nil : value
        },
        Setting(name: "AI_MODEL", defaultValue: "gpt-4o-mini", help: "Model name sent to the AI API") {
            config, value throws(ConfigurationError) in
            guard !value.isEmpty else { throw ConfigurationError(setting: "AI_MODEL", message: "must not be empty") }
            config.ai.model = value
        },
        .seconds("AI_TIMEOUT", 20, in: 1...600, \.ai.timeout, "Seconds to wait for the AI API"),
        .integer("AI_RATE_LIMIT", 5, in: 1...100_000, \.ai.rateLimit, "Ryo replies per user per AI_RATE_WINDOW"),
        .seconds("AI_RATE_WINDOW", 60, in: 1...86400, \.ai.rateWindow, "Seconds of the Ryo reply sliding window"),
        Setting(name: "PUSHER_APP_ID", defaultValue: "presence", help: "Pusher app id (HTTP API path /apps/<id>)") {
            config, value throws(ConfigurationError) in
            guard !value.isEmpty, !value.contains("/") else { throw ConfigurationError(setting: "PUSHER_APP_ID", message: "must be a non-empty id") }
            config.pusher.appId = value
        },
        Setting(name: "PUSHER_KEY", defaultValue: "presence-key", defaultNote: "development", help: "Pusher app key clients connect with") {
            config, value throws(ConfigurationError) in
            guard !value.isEmpty, !value.contains("/") else { throw ConfigurationError(setting: "PUSHER_KEY", message: "must be a non-empty key") }
            config.pusher.key = value
        },
        Setting(name: "PUSHER_SECRET", defaultValue: "presence-secret", defaultNote: "development", help: "Pusher app secret (signs channel auth and the HTTP API)") {
            config, value throws(ConfigurationError) in
            guard value.count >= 8 else { throw ConfigurationError(setting: "PUSHER_SECRET", message: "must be at least 8 characters") }
            config.pusher.secret = value
        },
        .milliseconds("SWEEP_INTERVAL_MS", 1000, in: 50...60_000, \.sweepInterval,
                      "How often each worker looks for expired presence, in milliseconds"),
        .number("BCRYPT_COST", 10, in: 4...15, "bcrypt work factor for passwords (4-15)") { config, cost in
            config.bcryptCost = UInt8(cost)
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
        .number("METRICS_PORT", nil, defaultNote: "PORT + \(metricsPortOffset), 9464 for PORT 8080", in: 0...65535,
                "Port of the /metrics listener (0: no metrics listener); unset, each worker's follows its PORT") { config, port in
            config.metricsPort = port
        },
        Setting(name: "WEBHOOK_URLS", defaultValue: nil, defaultNote: "no webhooks",
                help: "Comma-separated webhook receivers, each URL or URL|event+event (channel_occupied, channel_vacated, member_added, member_removed, client_event, cache_miss, ticket_unattended, message_unseen)") {
            config, value throws(ConfigurationError) in
            do throws(WebhookConfigurationError) {
                config.webhooks.targets = try WebhookTarget.parse(value)
            } catch {
                throw ConfigurationError(setting: "WEBHOOK_URLS", message: error.message)
            }
        },
        .milliseconds("UNSEEN_GRACE_MS", 30000, in: 100...86_400_000, \.webhooks.unseenGrace,
                      "Milliseconds a member of a private room or support ticket has to see a message (be present, or subscribed to its channel on any worker) before the message_unseen webhook goes out for them; no effect unless a WEBHOOK_URLS receiver wants message_unseen (an unfiltered one does)"),
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
        Setting(name: "RECOVERY_ENABLED", defaultValue: "true",
                help: "Connection recovery (true/false): events on recoverable channels carry an offset and an epoch and are kept for RECOVERY_WINDOW, and a pusher:subscribe with recover gets what it missed; false: no channel is recoverable") {
            config, value throws(ConfigurationError) in
            switch value.lowercased() {
            case "true", "1", "yes", "on": config.recovery.enabled = true
            case "false", "0", "no", "off": config.recovery.enabled = false
            default: throw ConfigurationError(setting: "RECOVERY_ENABLED", message: "must be true or false, got '\(value)'")
            }
        },
        Setting(name: "RECOVERY_CHANNELS", defaultValue: nil, defaultNote: "only the default channels",
                help: "Comma-separated glob patterns (* for any characters) of channels recoverable beside the defaults (\(RecoveryPolicy.defaultPatterns.joined(separator: ", ")))") {
            config, value throws(ConfigurationError) in
            let patterns = list(value)
            guard patterns.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 200 && !$0.contains("{") && !$0.contains("}") }) else {
                throw ConfigurationError(setting: "RECOVERY_CHANNELS", message: "must be comma-separated channel patterns, got '\(value)'")
            }
            config.recovery.extraPatterns = patterns
        },
        .seconds("RECOVERY_WINDOW", 300, in: 1...86_400, \.recovery.window,
                 "Seconds an event on a recoverable channel stays recoverable"),
        .integer("RECOVERY_MAX_EVENTS", 1000, in: 1...100_000, \.recovery.maxEvents,
                 "Events a recoverable channel keeps (the oldest go first); a client that missed more reloads"),
        Setting(name: "WEBSOCKET_ECHO_PATH", defaultValue: nil, defaultNote: "no echo socket",
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
            lines.append("  \(String(repeating: " ", count: width))  env \(setting.name), default \(setting.shownDefault)")
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
    /// A whole number in `range`, handed to `apply`; `defaultValue` `nil`: unset unless given.
    static func number(
        _ name: String, _ defaultValue: Int?, defaultNote: String? = nil, in range: ClosedRange<Int>, _ help: String,
        apply: @escaping @Sendable (inout AppConfiguration, Int) -> Void
    ) -> AppConfiguration.Setting {
        AppConfiguration.Setting(
            name: name, defaultValue: defaultValue.map { String($0) }, defaultNote: defaultNote, range: range, help: help
        ) { config, value throws(ConfigurationError) in
            apply(&config, try AppConfiguration.integer(value, setting: name, in: range))
        }
    }

    /// A whole number in `range`, stored at `keyPath`.
    static func integer(
        _ name: String, _ defaultValue: Int, in range: ClosedRange<Int>,
        _ keyPath: any WritableKeyPath<AppConfiguration, Int> & Sendable, _ help: String
    ) -> AppConfiguration.Setting {
        number(name, defaultValue, in: range, help) { config, number in config[keyPath: keyPath] = number }
    }

    /// Whole milliseconds in `range`, stored at `keyPath` as a duration.
    static func milliseconds(
        _ name: String, _ defaultValue: Int, in range: ClosedRange<Int>,
        _ keyPath: any WritableKeyPath<AppConfiguration, Duration> & Sendable, _ help: String
    ) -> AppConfiguration.Setting {
        number(name, defaultValue, in: range, help) { config, number in config[keyPath: keyPath] = .milliseconds(number) }
    }

    /// Whole seconds in `range`, stored at `keyPath` as a duration.
    static func seconds(
        _ name: String, _ defaultValue: Int, in range: ClosedRange<Int>,
        _ keyPath: any WritableKeyPath<AppConfiguration, Duration> & Sendable, _ help: String
    ) -> AppConfiguration.Setting {
        number(name, defaultValue, in: range, help) { config, number in config[keyPath: keyPath] = .seconds(number) }
    }
}
