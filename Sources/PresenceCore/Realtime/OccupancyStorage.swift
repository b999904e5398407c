/// Which channels have subscribers anywhere, and how many: each worker records its sockets' subscriptions with a TTL
/// and refreshes them, so a dead worker's lapse. Answers the Pusher HTTP API's channel queries the same on every
/// worker, and decides, once for the whole cluster, when a channel becomes occupied or vacated (and, in Redis, writes
/// the webhook event for it in the same step).
public protocol OccupancyStorage: Sendable {
    /// Records (or refreshes) each socket's subscription for `ttl`; returns the channels this made occupied (and
    /// vacated first, when their only subscribers had lapsed), each transition returned to exactly one caller.
    @discardableResult
    func touch(_ subscriptions: [(channel: String, socket: String)], ttl: Duration) async throws -> [OccupancyChange]
    /// Refreshes subscriptions a worker holds, only those still recorded and live: returns the positions in
    /// `subscriptions` whose entry was missing (the socket left meanwhile) or lapsed; those are not written, so a
    /// refresh never brings back a subscription that ended. The caller ``touch(_:ttl:)``es again those it still holds.
    func refresh(_ subscriptions: [(channel: String, socket: String)], ttl: Duration) async throws -> [Int]
    /// Forgets one socket's subscription; `true` when that left the channel without subscribers (vacated), returned to
    /// exactly one caller.
    @discardableResult
    func remove(channel: String, socket: String) async throws -> Bool
    /// Channels with a subscriber somewhere.
    func liveChannels() async throws -> [String]
    /// For each channel, its subscriptions and, when `users`, the users present on it (presence channels), in one
    /// step whatever the number of channels.
    func counts(_ channels: [String], users: Bool) async throws -> [(subscriptions: Int, users: Int?)]
    /// Channels whose every subscription lapsed unrefreshed (their workers died or stalled), now vacated; at most
    /// about `limit` per call, each returned to exactly one caller.
    func settleLapsed(limit: Int) async throws -> [String]
}

/// A channel's first subscriber anywhere in the cluster arrived (`occupied`), or its last one is gone.
public struct OccupancyChange: Sendable, Equatable {
    public var channel: String
    public var occupied: Bool

    public init(channel: String, occupied: Bool) {
        self.channel = channel
        self.occupied = occupied
    }
}
