/// What ``HubRegistry`` asks its driver (``RealtimeHub``) to do: the registry decides, the driver performs the I/O (the
/// feed, Redis through the storage protocols, the sockets) in the order the actions are listed.
///
/// `Socket` is whatever the driver keeps per socket (``PusherSocket`` in the hub, a plain value in tests).
package enum HubAction<Socket: Sendable>: Sendable {
    /// Subscribe the feed to `topic` (the first local subscriber of a channel, or the control channel with the first
    /// socket). `ticket` is handed back in ``HubRegistry/feedSubscribed(_:ticket:)`` once the feed confirms.
    case subscribeFeed(RealtimeTopic, ticket: UInt64)
    /// Unsubscribe the feed from `topic` (the last local subscriber left). `ticket` is handed back in
    /// ``HubRegistry/feedUnsubscribed(_:ticket:)``.
    case unsubscribeFeed(RealtimeTopic, ticket: UInt64)
    /// Record in Redis that `socket` is on `channel` (occupancy; the first subscriber's `channel_occupied`).
    case touchOccupancy(channel: String, socket: String)
    /// Take `socket`'s occupancy of `channel` back in Redis.
    case removeOccupancy(channel: String, socket: String)
    /// Remove (and announce) `user`'s presence through `socket` on presence channel `channel`.
    case removePresence(channel: String, user: String, socket: String)
    /// Write the event being dispatched on `channel` to these sockets (each face's filtering is the driver's).
    case deliver(channel: String, to: [Socket])
    /// Close `socket` with `code` (`grace`: how long the client has to answer the close frame; `nil`: the socket's own).
    case close(Socket, code: UInt16, reason: String, grace: Duration?)
    /// Draining, and the last socket is gone: whoever waits for the drain may go on.
    case drainCompleted
}

extension HubAction: Equatable where Socket: Equatable {}
