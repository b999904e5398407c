import Logging
import Foundation
import HTTPTypes
import Hummingbird
import PresenceCore

/// A refused domain operation answers for itself: routes throw ``DomainError`` as it is, and this is its HTTP answer.
extension DomainError: HTTPResponseError {
    public var status: HTTPResponse.Status { apiError.status }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try apiError.response(from: request, context: context)
    }

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
