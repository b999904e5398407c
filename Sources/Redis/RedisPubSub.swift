import NIOCore

/// A pub/sub subscriber as its users see it: ``RedisSubscriber`` (classic pub/sub on one connection) or
/// ``RedisShardedSubscriber`` (sharded pub/sub on a Redis Cluster, a connection per primary).
public protocol RedisPubSub: AnyObject, Sendable {
    /// Messages and reconnect signals, in order. One consumer.
    var events: AsyncStream<RedisSubscriberEvent> { get }
    /// Queues a subscribe now, in call order with every other request (a synchronous call, so an actor's requests
    /// reach Redis in the order the actor made them); the future completes once Redis confirmed.
    func requestSubscribe(_ channels: [String]) -> EventLoopFuture<Void>
    /// Queues an unsubscribe now, in call order with every other request.
    func requestUnsubscribe(_ channels: [String]) -> EventLoopFuture<Void>
    /// The channels currently wanted.
    var subscribedChannels: Set<String> { get async }
    /// Shrinks internal tables after many channels were unsubscribed.
    func compact()
    /// Closes every connection and finishes ``events``.
    func close() async
    /// The subscriber's periodic work (routing channels to their nodes), until cancelled; the owner runs it.
    func run() async
}

extension RedisPubSub {
    /// Subscribes and waits for Redis to confirm.
    public func subscribe(_ channels: [String]) async throws {
        try await requestSubscribe(channels).get()
    }

    /// Unsubscribes and waits for Redis to confirm.
    public func unsubscribe(_ channels: [String]) async throws {
        try await requestUnsubscribe(channels).get()
    }
}
