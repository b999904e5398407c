import Logging
import Foundation
import Hummingbird

/// Enforces `ALLOWED_ORIGINS` and answers CORS preflights.
///
/// A request with an `Origin` that no pattern allows → 403 `{"error":"Unauthorized"}`. Requests without `Origin`
/// (servers, curl) pass, and so do the service's own pages: an `Origin` naming the host the request was sent to
/// (its `Host`, as nginx passes it on), whatever `ALLOWED_ORIGINS` says. Allowed requests get `Access-Control-Allow-Origin` (the origin itself) and `Vary: Origin`.
/// `OPTIONS` → 204 with the allowed headers and the route's methods.
public struct OriginMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext
    let policy: OriginPolicy
    let routes: RouteTable

    public init(policy: OriginPolicy, routes: RouteTable) {
        self.policy = policy
        self.routes = routes
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin] else {
            if request.method == .options { return preflight(request, origin: nil) }
            return try await next(request, context)
        }
        guard policy.allows(origin, host: request.head.authority) else {
            return JSONResponse.error("Unauthorized", status: .forbidden, headers: [.vary: "Origin"])
        }
        if request.method == .options { return preflight(request, origin: origin) }
        var response = try await next(request, context)
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.accessControlAllowCredentials] = "true"
        response.headers[.vary] = "Origin"
        return response
    }

    func preflight(_ request: Request, origin: String?) -> Response {
        var headers = HTTPFields()
        if let origin {
            headers[.accessControlAllowOrigin] = origin
            headers[.accessControlAllowCredentials] = "true"
        }
        headers[.accessControlAllowHeaders] = "Content-Type, Authorization, X-Username, X-User-Timezone"
        let methods = routes.methods(for: request.uri.path)
        headers[.accessControlAllowMethods] = (methods + ["OPTIONS"]).joined(separator: ", ")
        headers[.accessControlMaxAge] = "600"
        headers[.vary] = "Origin"
        return Response(status: .noContent, headers: headers)
    }
}
