import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PresenceCore
import PresenceRedis
import PresenceRealtime
import PresenceHTTP

/// `GET /app-config.js`: the ryOS frontend's runtime configuration (`window.__RYOS_RUNTIME_CONFIG__`, read by its
/// `src/utils/runtimeConfig.ts`), as ryOS's own server writes it: the public origin (`APP_PUBLIC_ORIGIN`, else the
/// request's own: `Host`, and `X-Forwarded-Proto` when a trusted proxy sent it), the docs base, the realtime provider
/// (`REALTIME_PROVIDER`) with the `/ws` URL (`local`) or this service's Pusher key (`pusher`). Every value is
/// JSON-encoded; nothing from the request reaches the script unencoded.
struct RuntimeConfigController {
    /// `APP_PUBLIC_ORIGIN`, when set.
    let publicOrigin: String?
    /// `local` or `pusher`.
    let realtimeProvider: String
    let pusherKey: String
    let trustedProxies: [ClientAddress.Block]

    /// Where ryOS's `local` provider opens its socket.
    static let websocketPath = "/ws"

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("/app-config.js") { request, context in
            let origin = publicOrigin ?? Self.requestOrigin(
                host: request.head.authority,
                forwardedProto: request.headers[HTTPField.Name("X-Forwarded-Proto")!],
                fromTrustedProxy: context.peerAddress.map { ClientAddress.isTrusted($0, trustedProxies) } ?? false
            )
            let body = Self.script(origin: origin, realtimeProvider: realtimeProvider, pusherKey: pusherKey)
            let headers: HTTPFields = [
                .contentType: "application/javascript; charset=utf-8",
                .cacheControl: "no-cache",
                HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            ]
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
        }
    }

    /// `window.__RYOS_RUNTIME_CONFIG__ = {...};` for a public origin such as `https://os.example`.
    static func script(origin: String, realtimeProvider: String, pusherKey: String) -> String {
        "window.__RYOS_RUNTIME_CONFIG__ = \(config(origin: origin, realtimeProvider: realtimeProvider, pusherKey: pusherKey).serialized);"
    }

    /// The configuration object (ryOS's `ClientRuntimeConfig`).
    static func config(origin: String, realtimeProvider: String, pusherKey: String) -> JSONValue {
        let secure = origin.hasPrefix("https://")
        let local = realtimeProvider == "local"
        let host = origin.range(of: "://").map { String(origin[$0.upperBound...]) } ?? origin
        return [
            "appPublicOrigin": .string(origin),
            "docsBaseUrl": .string(origin + "/docs"),
            "realtimeProvider": .string(local ? "local" : "pusher"),
            "websocketPath": .string(websocketPath),
            "websocketUrl": local ? .string((secure ? "wss://" : "ws://") + host + websocketPath) : .null,
            "pusher": local ? .null : ["key": .string(pusherKey), "cluster": "local", "forceTLS": .bool(secure)],
            "ieLiveBrowserAvailable": false,
        ]
    }

    /// The origin the request was sent to: `http(s)://<Host>`. `https` only when a trusted proxy says so
    /// (`X-Forwarded-Proto`, its first value); a `Host` that is not a plain host name or address (and port) counts as
    /// `localhost`.
    static func requestOrigin(host: String?, forwardedProto: String?, fromTrustedProxy: Bool) -> String {
        let proto = forwardedProto?.split(separator: ",").first?.trimmingCharacters(in: .whitespaces).lowercased()
        let scheme = fromTrustedProxy && proto == "https" ? "https" : "http"
        return "\(scheme)://\(host.flatMap { isPlainHost($0) ? $0.lowercased() : nil } ?? "localhost")"
    }

    /// Letters, digits, `.`, `-`, `:`, `[`, `]` only (a name, an IPv4 or bracketed IPv6 address, and a port).
    static func isPlainHost(_ host: String) -> Bool {
        (1...255).contains(host.utf8.count) && host.utf8.allSatisfy { b in
            (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122)
                || b == UInt8(ascii: ".") || b == UInt8(ascii: "-") || b == UInt8(ascii: ":")
                || b == UInt8(ascii: "[") || b == UInt8(ascii: "]")
        }
    }
}
