/// Pusher's cache channels: the last event triggered on one (through the HTTP API) is kept for ``ttl``, and a new
/// subscriber gets it right after `pusher_internal:subscription_succeeded`, or `pusher:cache_miss` when there is none.
public protocol ChannelCache: Sendable {
    /// The last cached event of `channel` as its clients receive it (``BroadcastEvent/clientMessage``), if any.
    func last(on channel: String) async throws -> String?
}

/// Which channels are cache channels, and how long they keep their event.
public enum CacheChannels {
    /// How long a cache channel keeps its last event.
    public static let ttl = Duration.seconds(30 * 60)

    /// `cache-`, `private-cache-`, `private-encrypted-cache-` and `presence-cache-` channels.
    public static func isCache(_ channel: String) -> Bool {
        channel.hasPrefix("cache-") || channel.hasPrefix("private-cache-") || channel.hasPrefix("private-encrypted-cache-")
            || channel.hasPrefix("presence-cache-")
    }
}
