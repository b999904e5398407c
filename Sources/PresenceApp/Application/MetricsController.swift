import Hummingbird
import Logging
import NIOCore
import Prometheus

/// `GET /metrics`: every swift-metrics instrument of this worker in the Prometheus text format. Served on its own
/// listener (`METRICS_HOST`:`METRICS_PORT`, loopback by default), never on the public API port: route and status
/// counts, socket counts and Redis errors are for operators, not for anyone who can reach the API.
struct MetricsController {
    let registry: PrometheusCollectorRegistry

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/metrics") { _, _ in
            var buffer = ByteBuffer()
            buffer.writeBytes(registry.emitToBuffer())
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: buffer)
            )
        }
    }

    /// The metrics listener as a service of its own.
    static func application(host: String, port: Int, registry: PrometheusCollectorRegistry, logger: Logger) -> some ApplicationProtocol {
        let router = Router()
        MetricsController(registry: registry).addRoutes(to: router)
        var logger = logger
        logger[metadataKey: "listener"] = "metrics"
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "presence-server-metrics"),
            logger: logger
        )
    }
}
