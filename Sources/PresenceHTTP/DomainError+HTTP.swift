import Logging
import Foundation
import HTTPTypes
import Hummingbird
import PresenceCore

extension DomainError {
    /// The HTTP answer for a refused domain operation.
    var apiError: APIError {
        switch self {
        case .roomNotFound: return APIError(.notFound, "Room not found")
        case .forbidden(let message): return APIError(.forbidden, message)
        case .conflict(let message): return APIError(.conflict, message)
        case .invalid(let message): return APIError(.badRequest, message)
        case .unauthorized(let message): return APIError(.unauthorized, message)
        case .roomClosed: return APIError(.gone, "Room closed")
        case .notFound(let message): return APIError(.notFound, message)
        case .notPresent: return APIError(.conflict, "Not in room")
        case .rateLimited(let decision):
            var headers = HTTPFields()
            headers[.retryAfter] = String(decision.retryAfterSeconds)
            if !decision.name.isEmpty {
                headers[HTTPField.Name("RateLimit")!] = decision.header
                headers[HTTPField.Name("RateLimit-Policy")!] = decision.policyHeader
            }
            return APIError(.tooManyRequests, "Rate limit exceeded", headers: headers)
        }
    }
}

/// Runs a domain call, turning ``DomainError`` into ``APIError``.
func domain<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as DomainError {
        throw error.apiError
    }
}
