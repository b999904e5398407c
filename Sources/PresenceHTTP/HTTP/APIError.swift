import Logging
import Foundation
import Hummingbird
import NIOCore

/// An error a route reports to its client: a status and the message that goes out as `{"error": message}`.
public struct APIError: Error, Sendable, Equatable, HTTPResponseError {
    public var status: HTTPResponse.Status
    public var message: String
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        JSONResponse.error(message, status: status, headers: headers)
    }
}

extension APIError {
    public static func badRequest(_ message: String) -> APIError { APIError(.badRequest, message) }
}
