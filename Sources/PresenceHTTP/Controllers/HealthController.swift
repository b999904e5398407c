import Foundation
import Hummingbird
import PresenceCore
import Logging
import Redis

/// `GET /health` (the process is up) and `GET /ready` (Redis answers PING).
public struct HealthController: Sendable {
    let redis: RedisClient
    /// How long `/ready` waits for PING before declaring Redis unavailable.
    let readinessTimeout: Duration

    public init(redis: RedisClient, readinessTimeout: Duration = .seconds(1)) {
        self.redis = redis
        self.readinessTimeout = readinessTimeout
    }

    public func addRoutes(to router: Router<AppRequestContext>) {
        router.get("/health") { _, _ in
            JSONResponse.make(["status": "ok"])
        }
        router.get("/ready") { _, context in
            do {
                try await redis.checkHealth(timeout: readinessTimeout)
                return JSONResponse.make(["status": "ready"])
            } catch {
                context.logger.debug("Readiness check failed", metadata: ["error": "\(error)"])
                return JSONResponse.error("Redis unavailable", status: .serviceUnavailable)
            }
        }
    }
}
