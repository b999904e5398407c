import Foundation
import Hummingbird
import PresenceCore
import Logging

/// `GET /health` (the process is up) and `GET /ready` (Redis answers PING).
public struct HealthController: Sendable {
    /// Throws when the store does not answer (Redis PING within the readiness timeout, in the composition root).
    let checkReadiness: @Sendable () async throws -> Void

    public init(checkReadiness: @escaping @Sendable () async throws -> Void) {
        self.checkReadiness = checkReadiness
    }

    public func addRoutes(to router: Router<AppRequestContext>) {
        router.get("/health") { _, _ in
            JSONResponse.make(["status": "ok"])
        }
        router.get("/ready") { _, context in
            do {
                try await checkReadiness()
                return JSONResponse.make(["status": "ready"])
            } catch {
                context.logger.debug("Readiness check failed", metadata: ["error": "\(error)"])
                return JSONResponse.error("Redis unavailable", status: .serviceUnavailable)
            }
        }
    }
}
