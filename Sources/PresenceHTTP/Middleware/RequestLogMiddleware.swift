import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import PresenceCore
import Synchronization

/// One log line and metrics per request, and the request id.
///
/// `X-Request-Id` is taken from the request when it is sane (≤ 128 visible ASCII characters) or generated, put on the
/// request's logger and echoed in the response. Metrics: `http_requests_total{method,route,status}` and the
/// `http_request_duration_seconds{method,route}` histogram. `route` is the matched pattern (e.g. `/api/rooms/:id`),
/// never the raw path, so cardinality stays bounded.
package struct RequestLogMiddleware: RouterMiddleware {
    package init(stats: WorkerStats) {
        self.stats = stats
    }

    package typealias Context = AppRequestContext
    static let header = HTTPField.Name("X-Request-Id")!
    /// Where this worker's request rate and latency are sampled for the operator console.
    let stats: WorkerStats

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let id = request.headers[Self.header].flatMap(Self.sanitize) ?? Self.generate()
        var context = context
        context.logger[metadataKey: "request_id"] = .string(id)
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            // Errors are turned into JSON by the next middleware; anything reaching here is unexpected.
            response = JSONResponse.error("Internal server error", status: .internalServerError)
        }
        response.headers[Self.header] = id
        let elapsed = ContinuousClock.now - start
        let route = context.endpointPath ?? "unmatched"
        let method = request.method.rawValue
        let status = response.status.code
        let instruments = Self.instruments(method: method, route: route, status: status)
        instruments.counter.increment()
        let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
        instruments.timer.recordNanoseconds(nanoseconds)
        stats.record(nanoseconds: nanoseconds)
        let milliseconds = Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000
        context.logger.info("request", metadata: [
            "method": .string(method), "route": .string(route), "path": .string(request.uri.path),
            "status": .stringConvertible(status), "duration_ms": .string(String(format: "%.2f", milliseconds)),
        ])
        return response
    }

    private struct Key: Hashable { let method: String, route: String, status: Int }
    /// Metric handles by (method, route, status): creating them per request would go through the registry each time.
    private static let cache = Mutex<[Key: (counter: Counter, timer: Timer)]>([:])

    static func instruments(method: String, route: String, status: Int) -> (counter: Counter, timer: Timer) {
        let key = Key(method: method, route: route, status: status)
        return cache.withLock { cache in
            if let hit = cache[key] { return hit }
            let made = (
                counter: Counter(label: "http_requests_total", dimensions: [("method", method), ("route", route), ("status", String(status))]),
                timer: Timer(label: "http_request_duration_seconds", dimensions: [("method", method), ("route", route)])
            )
            cache[key] = made
            return made
        }
    }

    static func sanitize(_ value: String) -> String? {
        guard (1...128).contains(value.utf8.count), value.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else { return nil }
        return value
    }

    /// 32 hex digits, unique per process: a random prefix drawn once and a counter (no system call per request).
    static func generate() -> String {
        let sequence = counter.add(1, ordering: .relaxed).oldValue
        return prefix + Hex.encode((0..<8).map { UInt8(truncatingIfNeeded: sequence >> (UInt64(7 - $0) * 8)) })
    }

    private static let prefix: String = {
        var generator = SystemRandomNumberGenerator()
        let random = generator.next() as UInt64
        return Hex.encode((0..<8).map { UInt8(truncatingIfNeeded: random >> (UInt64($0) * 8)) })
    }()

    private static let counter = Atomic<UInt64>(0)
}
