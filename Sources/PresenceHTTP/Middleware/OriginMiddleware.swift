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
    let patterns: [String]
    let routes: RouteTable

    public init(patterns: [String], routes: RouteTable) {
        self.patterns = patterns
        self.routes = routes
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin] else {
            if request.method == .options { return preflight(request, origin: nil) }
            return try await next(request, context)
        }
        guard isAllowed(origin) || Self.isSameOrigin(origin, host: request.head.authority) else {
            return JSONResponse.error("Unauthorized", status: .forbidden, headers: [.vary: "Origin"])
        }
        if request.method == .options { return preflight(request, origin: origin) }
        var response = try await next(request, context)
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.vary] = "Origin"
        return response
    }

    func preflight(_ request: Request, origin: String?) -> Response {
        var headers = HTTPFields()
        if let origin { headers[.accessControlAllowOrigin] = origin }
        headers[.accessControlAllowHeaders] = "Content-Type, Authorization, X-Username"
        let methods = routes.methods(for: request.uri.path)
        headers[.accessControlAllowMethods] = (methods + ["OPTIONS"]).joined(separator: ", ")
        headers[.accessControlMaxAge] = "600"
        headers[.vary] = "Origin"
        return Response(status: .noContent, headers: headers)
    }

    /// Whether `origin` (`scheme://host[:port]`) names `host` (the request's `Host`: `host[:port]`), ignoring the
    /// scheme (TLS may end at a proxy) and letter case.
    static func isSameOrigin(_ origin: String, host: String?) -> Bool {
        guard let host, !host.isEmpty, let schemeEnd = origin.range(of: "://") else { return false }
        return origin[schemeEnd.upperBound...].lowercased() == host.lowercased()
    }

    func isAllowed(_ origin: String) -> Bool {
        patterns.contains { Self.matches(origin, pattern: $0) }
    }

    /// Glob match where `*` matches any run of characters.
    static func matches(_ text: String, pattern: String) -> Bool {
        if pattern == "*" { return true }
        let t = Array(text.utf8), p = Array(pattern.utf8)
        var ti = 0, pi = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count && p[pi] == t[ti] && p[pi] != UInt8(ascii: "*") {
                ti += 1; pi += 1
            } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
                star = pi; mark = ti; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; ti = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}
