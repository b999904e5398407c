import Foundation
import Crypto

/// One receiver of webhooks (`WEBHOOK_URLS`): its URL and, optionally, the only events it wants.
public struct WebhookTarget: Sendable, Hashable {
    public let url: String
    /// `nil`: every event.
    public let events: Set<WebhookEvent.Name>?
    /// The first 12 hex digits of the URL's SHA-256: names its outbox in Redis and its series in `/metrics` without
    /// showing the URL (which may carry a token).
    public let id: String

    public init(url: String, events: Set<WebhookEvent.Name>? = nil) {
        self.url = url
        self.events = events
        self.id = String(Hex.encode(SHA256.hash(data: Array(url.utf8))).prefix(12))
    }

    /// Whether this receiver wants `name`.
    public func accepts(_ name: WebhookEvent.Name) -> Bool { events?.contains(name) ?? true }

    /// Reads `WEBHOOK_URLS`: comma-separated items, each `URL` or `URL|event+event` (Pusher's event names). Throws a
    /// message naming the bad item.
    public static func parse(_ list: String) throws(WebhookConfigurationError) -> [WebhookTarget] {
        var targets: [WebhookTarget] = []
        for item in list.split(separator: ",") {
            let parts = item.trimmingCharacters(in: .whitespaces).split(separator: "|", maxSplits: 1)
            guard let first = parts.first else { continue }
            let url = String(first)
            let lowered = url.lowercased()
            guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://"), url.count > 8,
                  !url.contains(where: { $0 == " " || $0.isNewline }) else {
                throw WebhookConfigurationError(message: "not an http(s) URL: \(url)")
            }
            var events: Set<WebhookEvent.Name>?
            if parts.count == 2 {
                var names = Set<WebhookEvent.Name>()
                for name in parts[1].split(separator: "+") {
                    guard let known = WebhookEvent.Name(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                        throw WebhookConfigurationError(message: "unknown webhook event \"\(name)\" for \(url) (known: \(WebhookEvent.Name.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    names.insert(known)
                }
                guard !names.isEmpty else { throw WebhookConfigurationError(message: "no events after | for \(url)") }
                events = names
            }
            let target = WebhookTarget(url: url, events: events)
            guard !targets.contains(where: { $0.id == target.id }) else {
                throw WebhookConfigurationError(message: "\(url) is listed twice")
            }
            targets.append(target)
        }
        return targets
    }
}

/// A `WEBHOOK_URLS` item the service cannot use.
public struct WebhookConfigurationError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
