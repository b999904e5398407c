import Foundation
import HTTPTypes
import Hummingbird

/// Which browser origins may call the API: `ALLOWED_ORIGINS` patterns, `APP_PUBLIC_ORIGIN`, and the service's own
/// pages (an origin naming the host the request was sent to, when that host is an IP address or `localhost`). Used by
/// ``OriginMiddleware`` for every request that names an `Origin`, and by ``Authenticator`` for the CSRF rule of cookie
/// sessions.
///
/// The own-host pass is never given to a host *name* other than `localhost`: with DNS rebinding, an attacker's name
/// (`evil.example`) resolves to this server, the browser sends `Origin: http://evil.example:8080` and
/// `Host: evil.example:8080`, and the two agree. An address cannot be rebound, and browsers keep `localhost` on the
/// loopback. A service reached by name is named in `APP_PUBLIC_ORIGIN` or `ALLOWED_ORIGINS`.
public struct OriginPolicy: Sendable {
    let patterns: [String]
    let publicOrigin: String?

    public init(patterns: [String], publicOrigin: String? = nil) {
        self.patterns = patterns
        self.publicOrigin = publicOrigin?.lowercased()
    }

    /// Whether `origin` (`scheme://host[:port]`) may call the API for a request sent to `host`.
    public func allows(_ origin: String, host: String?) -> Bool {
        if let publicOrigin, origin.lowercased() == publicOrigin { return true }
        return patterns.contains { Self.matches(origin, pattern: $0) } || Self.isSameOrigin(origin, host: host)
    }

    /// The origin a browser says the request comes from: `Origin`, or else the origin of `Referer`.
    public static func requestOrigin(_ request: Request) -> String? {
        if let origin = request.headers[.origin], origin != "null" { return origin }
        guard let referer = request.headers[.referer], let schemeEnd = referer.range(of: "://") else { return nil }
        let rest = referer[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty else { return nil }
        return String(referer[..<schemeEnd.upperBound]) + authority
    }

    /// Whether `origin` (`scheme://host[:port]`) names `host` (the request's `Host`: `host[:port]`), ignoring the
    /// scheme (TLS may end at a proxy) and letter case, and `host` cannot be rebound (an address, or `localhost`).
    static func isSameOrigin(_ origin: String, host: String?) -> Bool {
        guard let host, !host.isEmpty, let schemeEnd = origin.range(of: "://") else { return false }
        return origin[schemeEnd.upperBound...].lowercased() == host.lowercased() && isUnrebindable(host)
    }

    /// `host[:port]` names an IPv4 or bracketed IPv6 address, or `localhost`: no DNS answer can move it elsewhere.
    static func isUnrebindable(_ authority: String) -> Bool {
        let lower = authority.lowercased()
        if lower.hasPrefix("[") { return lower.contains("]") }
        let name = lower.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        if name == "localhost" { return true }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.utf8.allSatisfy { (48...57).contains($0) } && (Int(part) ?? 256) <= 255
        }
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
