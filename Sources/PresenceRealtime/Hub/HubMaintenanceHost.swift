import PresenceCore

/// A presence this worker holds in Redis: a socket on a presence channel as a user.
package typealias HubPresenceEntry = (channel: String, user: String, socket: String)

/// A subscription this worker holds in Redis (occupancy): a socket on a channel.
package typealias HubSubscriptionEntry = (channel: String, socket: String)

/// What ``HubMaintenance`` needs of the hub it maintains (``RealtimeHub``; a registry of their own in tests): the
/// state of its ``HubRegistry`` as each refresh batch goes out, and the per-socket work (pings, restoring a lapsed
/// presence, handing memory back) that touches the sockets.
package protocol HubMaintenanceHost: Sendable {
    /// Every (presence channel, user, socket) held now: the plan of a presence refresh.
    func presenceEntries() async -> [HubPresenceEntry]
    /// Those of `batch` still held now (the socket open and on the channel as that user): what left since the plan
    /// is not refreshed.
    func stillHeld(_ batch: [HubPresenceEntry]) async -> [HubPresenceEntry]
    /// A presence Redis no longer had at a refresh: put back if the socket still holds it (and may).
    func restorePresence(_ entry: HubPresenceEntry) async
    /// Every (channel, socket) subscription held now: the plan of an occupancy refresh.
    func subscriptionEntries() async -> [HubSubscriptionEntry]
    /// Those of `batch` still held now.
    func stillSubscribed(_ batch: [HubSubscriptionEntry]) async -> [HubSubscriptionEntry]
    /// Pings silent sockets and closes dead ones.
    func checkActivity() async
    /// Subscriptions held now, the most held since memory was last handed back, and open sockets.
    func load() async -> (subscriptions: Int, peak: Int, sockets: Int)
    /// Shrinks the hub's tables (and the feed's) to their contents; the peak becomes the current count.
    func compact() async
    /// Every subscription to a private room's or ticket's channel held now, with its user (`message_unseen`).
    func roomWatches() async -> [RoomWatch]
    /// Those of `batch` still held now.
    func stillWatching(_ batch: [RoomWatch]) async -> [RoomWatch]
}
