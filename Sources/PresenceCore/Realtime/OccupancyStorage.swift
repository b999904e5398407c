/// Which channels have subscribers anywhere, and how many: each worker records its sockets' subscriptions with a TTL
/// and refreshes them, so a dead worker's lapse. Answers the Pusher HTTP API's channel queries the same on every
/// worker.
public protocol OccupancyStorage: Sendable {
    /// Records (or refreshes) each socket's subscription for `ttl`.
    func touch(_ subscriptions: [(channel: String, socket: String)], ttl: Duration) async throws
    /// Forgets one socket's subscription.
    func remove(channel: String, socket: String) async throws
    /// Channels with a subscriber somewhere.
    func liveChannels() async throws -> [String]
    /// For each channel, its subscriptions and, when `users`, the users present on it (presence channels), in one
    /// step whatever the number of channels.
    func counts(_ channels: [String], users: Bool) async throws -> [(subscriptions: Int, users: Int?)]
}
