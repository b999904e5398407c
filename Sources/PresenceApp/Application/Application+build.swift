import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import Metrics
import Prometheus
import PresenceCore
import PresenceIntegrations
import PresenceRedis
import PresenceRealtime
import PresenceHTTP
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
        services: [
            .init(service: parts.services.hub),
            .init(service: Listener(app: parts.app, setting: "PORT", host: configuration.host, port: configuration.port)),
            .init(service: stop),
        ],
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
    var redisConfiguration = configuration.redis
    // Every connection (to each node of a cluster, after every reconnect) loads the scripts before its first command.
    redisConfiguration.preloadScripts = Scripts.all
    let redis = RedisClient(configuration: redisConfiguration, logger: redisLogger)
    let services = AppServices(configuration: configuration, redis: redis, logger: logger)
    if configuration.pusher.usesDevelopmentDefaults {
        logger.warning("PUSHER_KEY / PUSHER_SECRET are the development defaults: set your own before exposing this service")
    }
    let router = buildRouter(services)
    let startup = StartupTasks(
        chat: services.chat, users: services.users, migrations: services.migrations, admins: services.admins,
        adminPassword: configuration.adminPassword, logger: logger
    )
    let host = ProcessInfo.processInfo.hostName
    let workerID = "\(host):\(configuration.port)#\(getpid())"
    let announcer = WorkerAnnouncer(
        id: workerID, host: host, port: configuration.port, storage: services.operations,
        stats: services.workerStats, hub: services.hub, redis: redis, startedAt: Date(), interval: .seconds(5),
        logger: logger
    )
    var appServices: [any Service] = [redis, services.sweeper, services.unattendedWatcher, startup, announcer]
    if let unseenWatcher = services.unseenWatcher { appServices.append(unseenWatcher) }
    if let outbox = services.webhooks {
        // After Redis: stopped before it, so the leases are handed back while Redis is there.
        appServices.append(WebhookDispatcher(
            storage: outbox,
            sender: HTTPWebhookSender(key: configuration.pusher.key, secret: configuration.pusher.secret, timeout: configuration.webhooks.timeout),
            settings: configuration.webhooks, owner: workerID, logger: logger
        ))
    }
    if runHubInside { appServices.append(services.hub) }
    if configuration.effectiveMetricsPort != 0 {
        appServices.append(Listener(
            app: MetricsController.application(
                host: configuration.metricsHost, port: configuration.effectiveMetricsPort,
                registry: PrometheusMetricsFactory.defaultRegistry, logger: logger
            ),
            setting: "METRICS_PORT", host: configuration.metricsHost, port: configuration.effectiveMetricsPort
        ))
    }
    let limits = configuration.connections
    let http1 = HTTP1Channel.Configuration(
        idleTimeout: nil,  // ConnectionGuardHandler keeps every deadline of the connection
        httpDecoderConfiguration: .init(
            maxHeaderFieldSize: limits.maxHeaderBytes, maxHeaderListSize: limits.maxHeaderBytes, maxHeaderFieldCount: 200
        )
    )
    // WebSockets are served by event-loop handlers (PusherChannelHandler): one message (and frame) of at most 64 KiB,
    // valid UTF-8 text (1007). Liveness is Pusher's own ping/pong (see RealtimeHub), so no WebSocket-level auto ping.
    let app = Application(
        router: router,
        server: .guardedHTTP1PusherUpgrade(
            webSocketRouter: router, http1: http1, connection: PusherEndpoint(services: services),
            settings: limits, registry: services.registry
        ),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "presence-server"),
        services: appServices,
        logger: logger
    )
    return (app, services, logger)
}

/// The router with every route and middleware; separate so tests can drive it without a socket.
public func buildRouter(_ services: AppServices) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    let table = RouteTable()
    router.add(middleware: RequestLogMiddleware(stats: services.workerStats))
    router.add(middleware: JSONErrorMiddleware())
    let origins = OriginPolicy(patterns: services.configuration.allowedOrigins, publicOrigin: services.configuration.appPublicOrigin)
    router.add(middleware: OriginMiddleware(policy: origins, routes: table))
    router.add(middleware: MethodNotAllowedMiddleware(routes: table))
    let redis = services.redis
    let readinessTimeout = Duration.nanoseconds(services.configuration.redis.commandTimeout.nanoseconds)
    HealthController(checkReadiness: { try await redis.checkHealth(timeout: readinessTimeout) }).addRoutes(to: router)
    OpenAPIController().addRoutes(to: router)
    let authenticator = Authenticator(tokens: services.tokens, origins: origins, admins: services.admins, users: services.users)
    AuthController(
        users: services.users, tokens: services.tokens, authenticator: authenticator,
        cookie: SessionCookie(maxAge: services.configuration.tokenTTL, publicOrigin: services.configuration.appPublicOrigin),
        limiters: services.authLimiters,
        trustedProxies: services.configuration.trustedProxies.compactMap(ClientAddress.Block.init),
        admins: services.admins, adminPassword: services.configuration.adminPassword,
        realtime: RealtimeSignOut(access: services.channelAccess, events: services.events, logger: Logger(label: "auth"))
    ).addRoutes(to: router)
    RoomsController(chat: services.chat, authenticator: authenticator).addRoutes(to: router)
    PresenceController(chat: services.chat, channels: services.channelPresence, authenticator: authenticator).addRoutes(to: router)
    RyoController(ryo: services.ryo, authenticator: authenticator, stopDeadline: services.stopDeadline).addRoutes(to: router)
    SupportController(support: services.support, authenticator: authenticator).addRoutes(to: router)
    PusherAuthController(
        access: services.channelAccess, signer: services.signer, authenticator: authenticator,
        maxChannelName: services.configuration.pusher.maxChannelName
    )
        .addRoutes(to: router)
    PusherAPIController(
        events: services.events, occupancy: services.occupancy, presence: services.channelPresence,
        settings: services.configuration.pusher, signer: services.signer
    )
        .addRoutes(to: router)
    // The Pusher WebSocket: an upgrade request that this route answers with 200 (after the middleware) becomes a
    // socket (GuardedHTTPChannel); key and protocol are checked after the upgrade, as Pusher does. A plain GET gets an
    // empty 200.
    router.get("/app/:key") { _, _ in Response(status: .ok) }
    // ryOS's `local` realtime provider: tickets, its socket (`/ws`, accepted the same way; ryOS's frames), and the
    // runtime configuration its pages load first.
    RealtimeTicketController(
        tickets: services.realtimeTickets, limiter: services.realtimeTicketLimiter, authenticator: authenticator
    ).addRoutes(to: router)
    router.get("/ws") { _, _ in Response(status: .ok) }
    RuntimeConfigController(
        publicOrigin: services.configuration.appPublicOrigin, realtimeProvider: services.configuration.realtimeProvider,
        pusherKey: services.configuration.pusher.key,
        trustedProxies: services.configuration.trustedProxies.compactMap(ClientAddress.Block.init)
    ).addRoutes(to: router)
    ConsoleController(storage: services.operations, authenticator: authenticator, admins: services.admins)
        .addRoutes(to: router)
    let settings = WebAssets.PageSettings(
        pusherKey: services.configuration.pusher.key,
        chatTTLSeconds: Int(services.configuration.chat.presenceTTL.components.seconds),
        supportTTLSeconds: Int(services.configuration.support.presenceTTL.components.seconds)
    )
    if let web = WebAssets.bundled(settings: settings) {
        WebController(web: web).addRoutes(to: router)
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
