import Hummingbird
import Logging
import Redis
import ServiceLifecycle
import UnixSignals

/// The composition root: builds the Redis client, the router and the application from a configuration.
/// Services shut down in reverse order: the HTTP server stops accepting and drains in-flight requests first,
/// then the Redis connections close.
public func buildApplication(configuration: AppConfiguration, logger: Logger? = nil) -> some ApplicationProtocol {
    var logger = logger ?? Logger(label: "presence")
    logger.logLevel = configuration.logLevel
    var redisLogger = logger
    redisLogger[metadataKey: "component"] = "redis"
    let redis = RedisClient(configuration: configuration.redis, logger: redisLogger)
    let router = buildRouter(redis: redis)
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "presence-server"),
        services: [redis],
        logger: logger
    )
}

/// The router with every route and middleware; separate so tests can drive it without a socket.
public func buildRouter(redis: RedisClient) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    router.add(middleware: JSONErrorMiddleware())
    HealthController(redis: redis).addRoutes(to: router)
    return router
}

/// Builds the application and serves until SIGTERM or SIGINT, then shuts down gracefully.
public func runServer(configuration: AppConfiguration) async throws {
    let app = buildApplication(configuration: configuration)
    try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
}
