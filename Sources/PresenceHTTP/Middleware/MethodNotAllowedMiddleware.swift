import HTTPTypes
import Hummingbird

/// A known path asked with a method it does not have: 405 `Method not allowed` with `Allow`, instead of the router's
/// 404 (which stays for paths no route matches).
package struct MethodNotAllowedMiddleware: RouterMiddleware {
    package init(routes: RouteTable) {
        self.routes = routes
    }

    package typealias Context = AppRequestContext
    let routes: RouteTable

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let allowed = routes.methods(for: request.uri.path)
            guard !allowed.isEmpty, !allowed.contains(request.method.rawValue) else { throw error }
            throw HTTPError(.methodNotAllowed, headers: [.allow: allowed.sorted().joined(separator: ", ")], message: "Method not allowed")
        }
    }
}
