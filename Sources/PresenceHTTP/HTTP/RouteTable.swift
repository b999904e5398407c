import Hummingbird

/// Which methods each route pattern answers (for preflight responses and 405s), read from the router itself once
/// every route is on it (``load(_:)``), so it cannot drift from the routes.
public final class RouteTable: @unchecked Sendable {
    // Written once by `load` while the router is built, before any request; read-only afterwards.
    private var entries: [(segments: [Substring], method: String)] = []

    public init() {}

    /// Takes the routes of `router`; call after the last route is added, before serving.
    package func load(_ router: Router<AppRequestContext>) {
        entries = router.routes.map { ($0.path.description.split(separator: "/"), $0.method.rawValue) }
    }

    /// Methods of the routes matching `path` (a `{parameter}` segment matches any one segment).
    func methods(for path: String) -> [String] {
        let segments = path.split(separator: "/")
        var result: [String] = []
        for entry in entries where entry.segments.count == segments.count {
            let matches = zip(entry.segments, segments).allSatisfy { pattern, segment in pattern.hasPrefix("{") || pattern == segment }
            if matches && !result.contains(entry.method) { result.append(entry.method) }
        }
        return result
    }
}
