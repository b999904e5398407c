import Logging
import NIOCore

/// A dedicated pub/sub connection whose messages arrive as an `AsyncSequence` (``events``).
///
/// Channels can be added and removed at any time. After a reconnect the subscriber subscribes to all of
/// them again and then yields ``RedisSubscriberEvent/reconnected``. A periodic PING notices a silent dead
/// link. The rules live in ``RedisSubscriberStateMachine``; this class carries out its actions. State is confined to
/// the connection's event loop.
public final class RedisSubscriber: @unchecked Sendable {
    /// Messages and reconnect signals, in order. One consumer.
    public let events: AsyncStream<RedisSubscriberEvent>

    private let connection: RedisConnection
    private let continuation: AsyncStream<RedisSubscriberEvent>.Continuation
    private let healthCheckInterval: TimeAmount
    private var eventLoop: any EventLoop { connection.eventLoop }
    private var state = RedisSubscriberStateMachine<EventLoopPromise<Void>>()
    private var healthTimer: RepeatedTask?

    /// Creates a subscriber with its own connection; it connects at once. With `endpoints` it may connect to any of
    /// the nodes that list gives, the next one on each attempt (classic pub/sub on a Redis Cluster).
    public init(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        logger: Logger,
        healthCheckInterval: TimeAmount = .seconds(1),
        bufferingPolicy: AsyncStream<RedisSubscriberEvent>.Continuation.BufferingPolicy = .unbounded,
        endpoints: (@Sendable () -> [RedisConfiguration.Endpoint])? = nil
    ) {
        self.connection = RedisConnection(configuration: configuration, eventLoop: eventLoop, logger: logger, endpoints: endpoints)
        self.healthCheckInterval = healthCheckInterval
        (self.events, self.continuation) = AsyncStream.makeStream(bufferingPolicy: bufferingPolicy)
        eventLoop.execute { self.setUp() }
    }

    /// Subscribes to `channels`; returns once Redis confirmed each. If Redis is unreachable it throws after the
    /// bounded wait, but the channels stay wanted and are subscribed as soon as the connection is back.
    ///
    /// An `async` call starts on the generic executor, so two calls made one after the other from different tasks may
    /// reach the connection in either order: a caller whose subscribes and unsubscribes of one channel must stay in
    /// order uses ``requestSubscribe(_:)`` and ``requestUnsubscribe(_:)`` from one isolation domain instead.
    public func subscribe(_ channels: [String]) async throws {
        try await requestSubscribe(channels).get()
    }

    /// Unsubscribes from `channels`; returns once Redis confirmed (or at once when not connected).
    public func unsubscribe(_ channels: [String]) async throws {
        try await requestUnsubscribe(channels).get()
    }

    /// Queues a subscribe now, in call order with every other request to this subscriber (a synchronous call, so
    /// an actor's requests reach Redis in the order the actor made them); the future completes as ``subscribe(_:)``.
    public func requestSubscribe(_ channels: [String]) -> EventLoopFuture<Void> {
        guard !channels.isEmpty else { return eventLoop.makeSucceededVoidFuture() }
        return eventLoop.flatSubmit {
            let (action, waiters) = self.state.subscribe(channels, makeWaiter: { self.eventLoop.makePromise() })
            return self.perform(action, command: "SUBSCRIBE", waiters: waiters)
        }
    }

    /// Queues an unsubscribe now, in call order with every other request (see ``requestSubscribe(_:)``).
    public func requestUnsubscribe(_ channels: [String]) -> EventLoopFuture<Void> {
        guard !channels.isEmpty else { return eventLoop.makeSucceededVoidFuture() }
        return eventLoop.flatSubmit {
            let result = self.state.unsubscribe(channels, makeWaiter: { self.eventLoop.makePromise() })
            // A subscribe still waiting for its confirmation is moot now.
            result.moot.forEach { $0.succeed() }
            if result.reconnected { self.continuation.yield(.reconnected) }
            return self.perform(result.action, command: "UNSUBSCRIBE", waiters: result.waiters)
        }
    }

    /// The channels currently wanted.
    public var subscribedChannels: Set<String> {
        get async {
            (try? await eventLoop.submit { self.state.channels }.get()) ?? []
        }
    }

    /// Shrinks the subscriber's tables to what they hold now (they keep their largest size otherwise); call it after
    /// many channels were unsubscribed.
    public func compact() {
        eventLoop.execute { self.state.compact() }
    }

    /// Closes the connection and finishes ``events``.
    public func close() async {
        let future: EventLoopFuture<Void> = eventLoop.flatSubmit {
            self.healthTimer?.cancel()
            self.healthTimer = nil
            self.state.close().forEach { $0.fail(RedisError.shutdown) }
            self.continuation.finish()
            return self.connection.close()
        }
        try? await future.get()
    }

    // MARK: - On the event loop

    private func setUp() {
        connection.onPush = { [weak self] push in self?.handle(push) }
        connection.onReady = { [weak self] channel, handler, isReconnect in
            self?.connected(channel, handler: handler, isReconnect: isReconnect)
        }
        connection.start()
        healthTimer = eventLoop.scheduleRepeatedTask(initialDelay: healthCheckInterval, delay: healthCheckInterval) {
            [weak self] _ in
            // A PING that gets no answer in time makes the pipeline handler close the link, which reconnects.
            if let self, self.state.isReady { _ = self.connection.send(RedisCommand("PING")) }
        }
    }

    private func connected(_ channel: any Channel, handler: RedisPipelineHandler, isReconnect: Bool) {
        handler.subscriptionMode = true
        channel.closeFuture.whenComplete { [weak self] _ in self?.state.disconnected() }
        let (batches, reconnected) = state.connected(isReconnect: isReconnect)
        for batch in batches { connection.sendWithoutReply(RedisCommand("SUBSCRIBE", batch)) }
        if reconnected { continuation.yield(.reconnected) }
    }

    private func perform(
        _ action: RedisSubscriberStateMachine<EventLoopPromise<Void>>.RequestAction,
        command: String,
        waiters: [EventLoopPromise<Void>]
    ) -> EventLoopFuture<Void> {
        switch action {
        case .done(let error):
            if let error { return eventLoop.makeFailedFuture(error) }
            return eventLoop.makeSucceededVoidFuture()
        case .wait(let channels, let send, let confirmations):
            if send { connection.sendWithoutReply(RedisCommand(command, channels)) }
            let timeout = eventLoop.scheduleTask(in: connection.configuration.commandTimeout) { [weak self] in
                guard let self else { return }
                let (expired, error) = self.state.timedOut(confirmations)
                expired.forEach { $0.fail(error) }
            }
            return EventLoopFuture.andAllSucceed(waiters.map(\.futureResult), on: eventLoop).always { _ in timeout.cancel() }
        }
    }

    private func handle(_ push: RESPValue) {
        switch state.push(push) {
        case .none:
            break
        case .message(let channel, let payload):
            continuation.yield(.message(channel: channel, payload: payload))
        case .confirmed(let waiters, let reconnected):
            waiters.forEach { $0.succeed() }
            if reconnected { continuation.yield(.reconnected) }
        }
    }
}
