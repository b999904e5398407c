import Foundation

/// A `ws://` or `http://` URL cut into what a socket needs: host, port and the path (with query), in which
/// `{channel}` stands for a channel name.
struct Endpoint: Sendable {
    var host: String
    var port: Int
    var pathTemplate: String

    /// Parses `scheme://host[:port][/path]`; nil when it is not such a URL. The default port is 80.
    init?(_ url: String) {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        let rest = url[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        let path = rest.dropFirst(authority.count)
        if let colon = authority.lastIndex(of: ":") {
            guard let port = Int(authority[authority.index(after: colon)...]) else { return nil }
            host = String(authority[..<colon])
            self.port = port
        } else {
            host = String(authority)
            port = 80
        }
        if host.isEmpty { return nil }
        pathTemplate = path.isEmpty ? "/" : (path.first == "?" ? "/" + path : String(path))
    }

    /// The path with `{channel}` replaced by `channel`.
    func path(channel: String) -> String {
        pathTemplate.replacingOccurrences(of: "{channel}", with: channel)
    }

    /// The `Host` header's value.
    var hostHeader: String { port == 80 ? host : "\(host):\(port)" }
}
