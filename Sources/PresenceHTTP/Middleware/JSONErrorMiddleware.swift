import Foundation
import Hummingbird
import Logging
import NIOHTTP1
import PresenceCore

/// Turns every error into a JSON body `{"error": "..."}` with the right status: the routes' own
/// ``APIError``s, Hummingbird's errors (unknown route → 404, body too large → 413, ...), Redis out of reach
/// (503 `Redis unavailable`, with `Retry-After: 1`), and anything unexpected (500, logged, with no internals leaked
/// to the client).
public struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return JSONResponse.error(error.message, status: error.status, headers: error.headers)
        } catch let error as DomainError {
            let answer = error.apiError
            return JSONResponse.error(answer.message, status: answer.status, headers: answer.headers)
        } catch let error as HTTPError {
            return JSONResponse.error(error.body ?? Self.message(for: error.status), status: error.status, headers: error.headers)
        } catch let error as any HTTPResponseError {
            return JSONResponse.error(Self.message(for: error.status), status: error.status)
        } catch let error as HTTPParserError {
            // The body broke the HTTP framing (a bad chunk size, ...); the connection closes after this answer.
            let rejection = ConnectionRejection.forParserError(error, requestLineComplete: true, firstByte: nil)
            return JSONResponse.error(rejection.message, status: .init(code: Int(rejection.status.code)))
        } catch is RequestBodyTimeout {
            return JSONResponse.error("Request body timeout", status: .requestTimeout)
        } catch is WorkerStopping {
            return JSONResponse.error("Server shutting down", status: .serviceUnavailable, headers: [.retryAfter: "1"])
        } catch let error as any StorageUnavailabilityReporting where error.isUnavailability {
            context.logger.warning("Redis unavailable", metadata: [
                "error": "\(error)", "method": "\(request.method)", "path": "\(request.uri.path)",
            ])
            return JSONResponse.error("Redis unavailable", status: .serviceUnavailable, headers: [.retryAfter: "1"])
        } catch {
            context.logger.error("Unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            return JSONResponse.error("Internal server error", status: .internalServerError)
        }
    }

    static func message(for status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: return "Not found"
        case .methodNotAllowed: return "Method not allowed"
        case .contentTooLarge: return "Request body too large"
        case .badRequest: return "Bad request"
        default: return status.reasonPhrase
        }
    }
}
