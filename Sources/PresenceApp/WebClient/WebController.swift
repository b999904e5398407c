import PresenceHTTP
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The web client at `/`, the operator console at `/console` (its data is admin-only: ``ConsoleController``), and
/// their files at `/assets/<version>/<file>`.
///
/// Every answer carries a Content-Security-Policy that allows scripts, styles and connections from this origin only
/// (no inline script or style, no plugins, no framing), `nosniff`, and `Referrer-Policy: no-referrer`. Pages are
/// revalidated on each load (`no-cache`); versioned assets are cached for a year (`immutable`). An asset asked for
/// under another version (a page from a worker still on the previous build, during a rolling deploy) is served from
/// this build without long caching, rather than failing the page.
struct WebController {
    let web: WebAssets

    static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static let securityHeaders: HTTPFields = [
        HTTPField.Name("Content-Security-Policy")!: contentSecurityPolicy,
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
        HTTPField.Name("X-Frame-Options")!: "DENY",
        HTTPField.Name("Cross-Origin-Opener-Policy")!: "same-origin",
        HTTPField.Name("Permissions-Policy")!: "camera=(), microphone=(), geolocation=()",
    ]

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("/") { _, _ in try page("index.html") }
        router.get("/console") { _, _ in try page("console.html") }
        router.get("/assets/:version/:file") { _, context in
            let version = context.pathParameter("version") ?? ""
            guard let file = context.pathParameter("file"), WebAssets.isServable(file), let asset = web.assets[file] else { throw APIError(.notFound, "Not found") }
            var headers = Self.securityHeaders
            headers[.contentType] = asset.contentType
            headers[.cacheControl] = version == web.version ? "public, max-age=31536000, immutable" : "no-cache"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: asset.body))
        }
    }

    func page(_ name: String) throws -> Response {
        guard let body = web.pages[name] else { throw APIError(.notFound, "Not found") }
        var headers = Self.securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }
}
