import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import Metrics
import Prometheus
import PresenceCore
import Redis
import ServiceLifecycle
import UnixSignals

/// The composition root: builds the Redis client, the domain services, the router and the application from a
/// configuration. Used by tests, which run the hub inside the application.
public func buildApplication(configuration: AppConfiguration, logger: Logger? = nil) -> some ApplicationProtocol {
    let parts = makeApplication(configuration: configuration, logger: logger, runHubInside: true)
    return parts.app
}

/// Builds the application and serves until SIGTERM or SIGINT, then stops within `SHUTDOWN_TIMEOUT` (see
/// ``StopSequence``): WebSockets closed with 4200 and their presence removed while Redis is connected, then the
/// listener closed and in-flight requests finished, then the sweeper and Redis stopped.
public func runServer(configuration: AppConfiguration) async throws {
    // Every Lua script is read and checked before anything is served.
    try Scripts.verify()
    let parts = makeApplication(configuration: configuration, logger: nil, runHubInside: false)
    let stop = StopSequence(
        hub: parts.services.hub, registry: parts.services.registry, deadline: parts.services.stopDeadline,
        timeout: configuration.shutdownTimeout, logger: parts.logger
    )
    // A service group stops its services in reverse order: the stop sequence first, then the application (the
    // HTTP server, then the sweeper and Redis inside it), then the hub's subscriber.
    let group = ServiceGroup(configuration: .init(
        services: [.init(service: parts.services.hub), .init(service: parts.app), .init(service: stop)],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: parts.logger
    ))
    try await group.run()
    parts.logger.info("Stopped", metadata: stop.elapsedMetadata)
}

func makeApplication(configuration: AppConfiguration, logger: Logger?, runHubInside: Bool) -> (app: some ApplicationProtocol, services: AppServices, logger: Logger) {
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
    let startup = StartupTasks(
        chat: services.chat, users: services.users, admins: configuration.chat.admins,
        adminPassword: configuration.adminPassword, logger: logger
    )
    var appServices: [any Service] = [redis, services.sweeper, startup]
    if runHubInside { appServices.append(services.hub) }
    if configuration.metricsPort != 0 {
        appServices.append(MetricsController.application(
            host: configuration.metricsHost, port: configuration.metricsPort,
            registry: PrometheusMetricsFactory.defaultRegistry, logger: logger
        ))
    }
    let limits = configuration.connections
    let http1 = HTTP1Channel.Configuration(
        idleTimeout: nil,  // ConnectionGuardHandler keeps every deadline of the connection
        httpDecoderConfiguration: .init(
            maxHeaderFieldSize: limits.maxHeaderBytes, maxHeaderListSize: limits.maxHeaderBytes, maxHeaderFieldCount: 200
        )
    )
    // One Pusher message fits in one frame (≤ 64 KiB, the message limit too); text must be valid UTF-8 (1007).
    // Liveness is Pusher's own ping/pong (see RealtimeHub), so no WebSocket-level auto ping.
    let ws = WebSocketServerConfiguration(
        maxFrameSize: PusherConnection.maxMessageSize, autoPing: .disabled,
        closeTimeout: PusherConnection.closeGrace, validateUTF8: true
    )
    let app = Application(
        router: router,
        server: .guardedHTTP1WebSocketUpgrade(
            webSocketRouter: router, configuration: .init(http1: http1, ws: ws),
            settings: limits, registry: services.registry
        ),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "presence-server"),
        services: appServices,
        logger: logger
    )
    return (app, services, logger)
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
    /// Every open connection, for the connection limits and the stop's deadline.
    public let registry: ConnectionRegistry
    /// Opened when a stop reaches its deadline: long waits give up.
    public let stopDeadline = Latch()
    public let sweeper: PresenceSweeper
    public let searchLimiter: SlidingWindowLimiter
    /// Registrations and login attempts.
    let authLimiters: AuthController.Limiters
    /// Who may hold which channel (signing, subscribing, refreshing, access changes).
    public let channelAccess: ChannelAccess

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
        let support = SupportService(
            redis: redis, users: users, settings: supportSettings, logger: logger, presenceLimiter: chat.presenceLimiter
        )
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
        let channelAccess = ChannelAccess(chat: chat, support: support)
        self.channelAccess = channelAccess
        self.hub = RealtimeHub(
            redis: redis, presence: channelPresence, access: channelAccess, settings: configuration.pusher,
            tokenCache: tokens.cache, logger: logger
        )
        self.signer = PusherSigner(key: configuration.pusher.key, secret: configuration.pusher.secret)
        self.registry = ConnectionRegistry(
            settings: configuration.connections, trustedProxies: configuration.trustedProxies.compactMap(ClientAddress.Block.init)
        )
        self.searchLimiter = SlidingWindowLimiter(name: "search", limit: configuration.searchRateLimit, window: .seconds(60), redis: redis)
        self.authLimiters = AuthController.Limiters(
            register: SlidingWindowLimiter(name: "register", limit: configuration.registerRateLimit, window: .seconds(3600), redis: redis),
            loginPair: SlidingWindowLimiter(name: "login", limit: configuration.loginRateLimit, window: .seconds(60), redis: redis),
            loginUser: SlidingWindowLimiter(name: "login-user", limit: configuration.loginUserRateLimit, window: .seconds(60), redis: redis),
            loginAddress: SlidingWindowLimiter(name: "login-address", limit: configuration.loginAddressRateLimit, window: .seconds(60), redis: redis)
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
    HealthController(redis: services.redis, readinessTimeout: .nanoseconds(services.configuration.redis.commandTimeout.nanoseconds))
        .addRoutes(to: router)
    OpenAPIController().addRoutes(to: router)
    let authenticator = Authenticator(tokens: services.tokens)
    AuthController(
        users: services.users, tokens: services.tokens, authenticator: authenticator, limiters: services.authLimiters,
        trustedProxies: services.configuration.trustedProxies.compactMap(ClientAddress.Block.init),
        admins: services.configuration.chat.admins, adminPassword: services.configuration.adminPassword
    ).addRoutes(to: router)
    RoomsController(chat: services.chat, authenticator: authenticator).addRoutes(to: router)
    PresenceController(chat: services.chat, authenticator: authenticator).addRoutes(to: router)
    RyoController(ryo: services.ryo, authenticator: authenticator, stopDeadline: services.stopDeadline).addRoutes(to: router)
    SupportController(support: services.support, authenticator: authenticator).addRoutes(to: router)
    PusherAuthController(access: services.channelAccess, signer: services.signer, authenticator: authenticator)
        .addRoutes(to: router)
    PusherAPIController(redis: services.redis, presence: services.channelPresence, settings: services.configuration.pusher, signer: services.signer)
        .addRoutes(to: router)
    let connection = PusherConnection(
        hub: services.hub, redis: services.redis, presence: services.channelPresence, access: services.channelAccess,
        presenceLimiter: services.chat.presenceLimiter,
        settings: services.configuration.pusher, signer: services.signer, logger: Logger(label: "pusher")
    )
    router.ws("/app/:key") { _, _ in .upgrade([:]) } onUpgrade: { inbound, outbound, context in
        context.requestContext.releaseWebSocketHandler()
        let key = context.requestContext.pathParameter("key")
        let version = context.request.uri.queryParameters.get("protocol").flatMap { Int($0) }
        let overQuota = context.request.headers[HTTPField.Name(HTTPRequestObserver.overQuotaHeader)!]
            .flatMap(ConnectionRegistry.Refusal.init(rawValue:))
        try await connection.run(
            inbound: inbound, outbound: outbound, channel: context.requestContext.channel,
            key: key, protocolVersion: version, overQuota: overQuota
        )
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
