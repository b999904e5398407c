import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import Metrics
import Prometheus
import PresenceCore
import Redis
import ServiceLifecycle
import UnixSignals

/// The composition root: builds the Redis client, the domain services, the router and the application from a
/// configuration. Services shut down in reverse order: the HTTP server stops accepting and drains in-flight
/// requests first, then the sweeper stops, then the Redis connections close.
public func buildApplication(configuration: AppConfiguration, logger: Logger? = nil) -> some ApplicationProtocol {
    let parts = makeApplication(configuration: configuration, logger: logger, runHubInside: true)
    return parts.app
}

/// Builds the application and serves until SIGTERM or SIGINT, then shuts down gracefully: first the WebSocket hub
/// closes every socket with 4200 (clients reconnect to another worker at once) and their presence is removed, then
/// the HTTP server stops accepting and drains in-flight requests, then the sweeper stops and Redis closes.
public func runServer(configuration: AppConfiguration) async throws {
    let parts = makeApplication(configuration: configuration, logger: nil, runHubInside: false)
    let group = ServiceGroup(configuration: .init(
        services: [.init(service: parts.app), .init(service: parts.hub)],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: parts.logger
    ))
    try await group.run()
}

func makeApplication(configuration: AppConfiguration, logger: Logger?, runHubInside: Bool) -> (app: some ApplicationProtocol, hub: RealtimeHub, logger: Logger) {
    var logger = logger ?? Logger(label: "presence")
    logger.logLevel = configuration.logLevel
    var redisLogger = logger
    redisLogger[metadataKey: "component"] = "redis"
    let redis = RedisClient(configuration: configuration.redis, logger: redisLogger)
    let services = AppServices(configuration: configuration, redis: redis, logger: logger)
    if configuration.pusher.usesDevelopmentDefaults {
        logger.warning("PUSHER_KEY / PUSHER_SECRET are the development defaults: set your own before exposing this service")
    }
    let router = buildRouter(services)
    var appServices: [any Service] = [redis, services.sweeper, StartupTasks(chat: services.chat, logger: logger)]
    if runHubInside { appServices.append(services.hub) }
    let app = Application(
        router: router,
        // One Pusher message fits in one frame (≤ 64 KiB, the message limit too); text must be valid UTF-8 (1007).
        server: .http1WebSocketUpgrade(
            webSocketRouter: router,
            configuration: .init(ws: .init(maxFrameSize: PusherConnection.maxMessageSize, validateUTF8: true))
        ),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "presence-server"),
        services: appServices,
        logger: logger
    )
    return (app, services.hub, logger)
}

/// The domain services one worker runs, wired from the configuration.
public struct AppServices: Sendable {
    public let configuration: AppConfiguration
    public let redis: RedisClient
    public let users: UserDirectory
    public let tokens: TokenStore
    public let chat: ChatService
    public let support: SupportService
    public let ryo: RyoService
    public let channelPresence: ChannelPresence
    let hub: RealtimeHub
    let signer: PusherSigner
    public let sweeper: PresenceSweeper
    public let searchLimiter: SlidingWindowLimiter
    /// Login attempts per username and per client address.
    public let loginLimiters: (user: SlidingWindowLimiter, address: SlidingWindowLimiter)

    public init(configuration: AppConfiguration, redis: RedisClient, logger: Logger) {
        self.configuration = configuration
        self.redis = redis
        let users = UserDirectory(redis: redis, hasher: PasswordHasher(cost: configuration.bcryptCost))
        self.users = users
        let tokens = TokenStore(redis: redis, ttl: configuration.tokenTTL)
        self.tokens = tokens
        let chat = ChatService(redis: redis, users: users, settings: configuration.chat, logger: logger)
        self.chat = chat
        var supportSettings = configuration.support
        supportSettings.admins = configuration.chat.admins
        supportSettings.historyLimit = configuration.chat.historyLimit
        let support = SupportService(redis: redis, users: users, settings: supportSettings, logger: logger)
        self.support = support
        let provider: any AIProvider = configuration.ai.baseURL.map {
            OpenAICompatibleProvider(
                baseURL: $0, apiKey: configuration.ai.apiKey, model: configuration.ai.model, timeout: configuration.ai.timeout
            )
        } ?? OfflineRyoResponder()
        self.ryo = RyoService(
            provider: provider,
            limiter: SlidingWindowLimiter(name: "ai", limit: configuration.ai.rateLimit, window: configuration.ai.rateWindow, redis: redis),
            chat: chat, logger: logger
        )
        let channelPresence = ChannelPresence(redis: redis, chat: chat, ttl: configuration.chat.presenceTTL)
        self.channelPresence = channelPresence
        self.hub = RealtimeHub(
            redis: redis, presence: channelPresence, settings: configuration.pusher, tokenCache: tokens.cache, logger: logger
        )
        self.signer = PusherSigner(key: configuration.pusher.key, secret: configuration.pusher.secret)
        self.searchLimiter = SlidingWindowLimiter(name: "search", limit: configuration.searchRateLimit, window: .seconds(60), redis: redis)
        self.loginLimiters = (
            SlidingWindowLimiter(name: "login-user", limit: configuration.loginRateLimit, window: .seconds(60), redis: redis),
            SlidingWindowLimiter(name: "login-address", limit: configuration.loginAddressRateLimit, window: .seconds(60), redis: redis)
        )
        self.sweeper = PresenceSweeper(redis: redis, interval: configuration.sweepInterval, logger: logger) { expired in
            if expired.meta["type"] == "support" {
                await support.announceExpired(room: expired.room, users: expired.users, meta: expired.meta)
            } else if expired.meta["type"] == "channel", let channel = expired.meta["channel"] {
                await chat.broadcaster.publish(expired.users.map { ChatService.memberEvent(channel: channel, user: $0, action: "left") })
            } else {
                await chat.announceExpired(room: expired.room, users: expired.users, userCount: expired.userCount, meta: expired.meta)
            }
        }
    }
}

/// The router with every route and middleware; separate so tests can drive it without a socket.
public func buildRouter(_ services: AppServices) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    let table = RouteTable()
    router.add(middleware: RequestLogMiddleware())
    router.add(middleware: JSONErrorMiddleware())
    router.add(middleware: OriginMiddleware(patterns: services.configuration.allowedOrigins, routes: table))
    router.add(middleware: MethodNotAllowedMiddleware(routes: table))
    HealthController(redis: services.redis).addRoutes(to: router)
    MetricsController(registry: PrometheusMetricsFactory.defaultRegistry).addRoutes(to: router)
    OpenAPIController().addRoutes(to: router)
    let authenticator = Authenticator(tokens: services.tokens)
    AuthController(
        users: services.users, tokens: services.tokens, authenticator: authenticator, loginLimiters: services.loginLimiters,
        trustedProxies: services.configuration.trustedProxies.compactMap(ClientAddress.Block.init)
    ).addRoutes(to: router)
    RoomsController(chat: services.chat, authenticator: authenticator).addRoutes(to: router)
    PresenceController(chat: services.chat, authenticator: authenticator).addRoutes(to: router)
    RyoController(ryo: services.ryo, authenticator: authenticator).addRoutes(to: router)
    SupportController(support: services.support, authenticator: authenticator).addRoutes(to: router)
    PusherAuthController(chat: services.chat, support: services.support, signer: services.signer, authenticator: authenticator)
        .addRoutes(to: router)
    PusherAPIController(redis: services.redis, presence: services.channelPresence, settings: services.configuration.pusher, signer: services.signer)
        .addRoutes(to: router)
    let connection = PusherConnection(
        hub: services.hub, redis: services.redis, presence: services.channelPresence,
        settings: services.configuration.pusher, signer: services.signer, logger: Logger(label: "pusher")
    )
    router.ws("/app/:key") { _, _ in .upgrade([:]) } onUpgrade: { inbound, outbound, context in
        let key = context.requestContext.pathParameter("key")
        let version = context.request.uri.queryParameters.get("protocol").flatMap { Int($0) }
        try await connection.run(inbound: inbound, outbound: outbound, key: key, protocolVersion: version)
    }
    UsersController(
        users: services.users, limiter: services.searchLimiter,
        trustedProxies: services.configuration.trustedProxies.compactMap(ClientAddress.Block.init)
    ).addRoutes(to: router)
    table.load(router)
    return router
}

/// Sets up logging (text or JSON lines, at the configured level) and metrics (Prometheus, served on `/metrics`).
/// Call once per process, before building the application.
public func bootstrapObservability(configuration: AppConfiguration) {
    let level = configuration.logLevel
    let json = configuration.logFormat == "json"
    LoggingSystem.bootstrap { label in
        LineLogHandler(label: label, level: level, format: json ? .json : .text)
    }
    MetricsSystem.bootstrap(PrometheusMetricsFactory())
}
