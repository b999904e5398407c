import NIOCore

/// The pub/sub a worker's ``RealtimeHub`` listens on: the broadcasts of the client channels its sockets use, the
/// control channel and token revocations. PresenceRedis implements it on Redis pub/sub (classic, or sharded on a
/// cluster); tests drive the hub with a feed of their own.
public protocol RealtimeFeed: AnyObject, Sendable {
    /// Messages and reconnect signals, in order. One consumer.
    var events: any AsyncSequence<RealtimeFeedEvent, Never> { get }
    /// Queues a subscribe of `topics` now, in call order with every other request (a synchronous call, so an actor's
    /// requests go out in the order the actor made them); the future completes once every subscription is confirmed.
    func requestSubscribe(_ topics: [RealtimeTopic]) -> EventLoopFuture<Void>
    /// Queues an unsubscribe of `topics` now, in call order with every other request.
    func requestUnsubscribe(_ topics: [RealtimeTopic]) -> EventLoopFuture<Void>
    /// Shrinks internal tables after many topics were unsubscribed.
    func compact()
    /// Closes the feed and finishes ``events``.
    func close() async
    /// The feed's periodic work (routing topics to their nodes on a cluster), until cancelled; the hub runs it.
    func run() async
}

/// What a ``RealtimeFeed`` carries.
public enum RealtimeTopic: Hashable, Sendable {
    /// The broadcasts of one client channel (`room-x`, `presence-room-x`, ...).
    case channel(String)
    /// Commands to every worker: close a user's connections, sign-outs, access changes.
    case control
    /// Session tokens just revoked (the payload is the token's hash).
    case tokensRevoked
}

/// One item of a ``RealtimeFeed``.
public enum RealtimeFeedEvent: Sendable, Equatable {
    /// A message published on a topic this feed listens to.
    case message(RealtimeTopic, ByteBuffer)
    /// The feed was lost and is back, every topic subscribed again; what was published meanwhile is gone.
    case reconnected
}
