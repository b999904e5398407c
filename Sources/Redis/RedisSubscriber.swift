import Logging
import NIOCore

/// A dedicated pub/sub connection whose messages arrive as an `AsyncSequence` (``events``).
///
/// Channels can be added and removed at any time. After a reconnect the subscriber subscribes to all of
/// them again and then yields ``RedisSubscriberEvent/reconnected``. A periodic PING notices a silent dead
/// link: one still unanswered at the next check closes it, and it reconnects. Every reply is matched to the command
/// it answers (``RedisSubscriberStateMachine``; this class carries out its actions), so an error reply can never be
/// taken for another command's. State is confined to the connection's event loop.
///
/// In sharded mode (one per Redis Cluster primary, owned by ``RedisShardedSubscriber``) it speaks `SSUBSCRIBE`, one
/// slot per command, and hands back the channels Redis refused or dropped (their slot moved) through `onLost`.
public final class RedisSubscriber: RedisPubSub, @unchecked Sendable {
    /// Messages and reconnect signals, in order. One consumer.
    public let events: AsyncStream<RedisSubscriberEvent>

    private let connection: RedisConnection
    private let continuation: AsyncStream<RedisSubscriberEvent>.Continuation
    private let healthCheckInterval: TimeAmount
    private var eventLoop: any EventLoop { connection.eventLoop }
    private var state: RedisSubscriberStateMachine<EventLoopPromise<Void>>
    private var healthTimer: RepeatedTask?
    private var link: (any Channel)?
    private let sink: (@Sendable (RedisSubscriberEvent) -> Void)?
    private let onLost: (@Sendable (_ channels: [String], _ error: String?) -> Void)?
    private let onLink: (@Sendable (_ isUp: Bool) -> Void)?
    private let logger: Logger

    /// Creates a subscriber with its own connection; it connects at once. With `endpoints` it may connect to any of
    /// the nodes that list gives, the next one on each attempt (classic pub/sub on a Redis Cluster).
    public convenience init(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        logger: Logger,
        healthCheckInterval: TimeAmount = .seconds(1),
        bufferingPolicy: AsyncStream<RedisSubscriberEvent>.Continuation.BufferingPolicy = .unbounded,
        endpoints: (@Sendable () -> [RedisConfiguration.Endpoint])? = nil
    ) {
        self.init(
            configuration: configuration, eventLoop: eventLoop, logger: logger, healthCheckInterval: healthCheckInterval,
            bufferingPolicy: bufferingPolicy, endpoints: endpoints, mode: .classic, sink: nil, onLost: nil
        )
    }

    /// A sharded subscriber for one node: events go to `sink` (``events`` stays empty), channels Redis refuses
    /// (with the error) or drops (error `nil`) go to `onLost`, no longer wanted here, and `onLink` hears the
    /// connection go up and down.
    init(
        configuration: RedisConfiguration, eventLoop: any EventLoop, logger: Logger, healthCheckInterval: TimeAmount,
        bufferingPolicy: AsyncStream<RedisSubscriberEvent>.Continuation.BufferingPolicy = .unbounded,
        endpoints: (@Sendable () -> [RedisConfiguration.Endpoint])?,
        mode: RedisSubscriberStateMachine<EventLoopPromise<Void>>.Mode,
        sink: (@Sendable (RedisSubscriberEvent) -> Void)?,
        onLost: (@Sendable (_ channels: [String], _ error: String?) -> Void)?,
        onLink: (@Sendable (_ isUp: Bool) -> Void)? = nil
    ) {
        self.connection = RedisConnection(configuration: configuration, eventLoop: eventLoop, logger: logger, endpoints: endpoints)
        self.healthCheckInterval = healthCheckInterval
        self.state = RedisSubscriberStateMachine(mode: mode)
        self.sink = sink
        self.onLost = onLost
        self.onLink = onLink
        self.logger = logger
        (self.events, self.continuation) = AsyncStream.makeStream(bufferingPolicy: bufferingPolicy)
        eventLoop.execute { self.setUp() }
    }

    /// Queues a subscribe now, in call order with every other request to this subscriber (a synchronous call, so
    /// an actor's requests reach Redis in the order the actor made them); the future completes as ``subscribe(_:)``.
    public func requestSubscribe(_ channels: [String]) -> EventLoopFuture<Void> {
        guard !channels.isEmpty else { return eventLoop.makeSucceededVoidFuture() }
        return eventLoop.flatSubmit {
            let (action, waiters) = self.state.subscribe(channels, makeWaiter: { self.eventLoop.makePromise() })
            return self.perform(action, command: self.state.mode.subscribeCommand, waiters: waiters)
        }
    }

    /// Queues an unsubscribe now, in call order with every other request (see ``requestSubscribe(_:)``).
    public func requestUnsubscribe(_ channels: [String]) -> EventLoopFuture<Void> {
        guard !channels.isEmpty else { return eventLoop.makeSucceededVoidFuture() }
        return eventLoop.flatSubmit {
            let result = self.state.unsubscribe(channels, makeWaiter: { self.eventLoop.makePromise() })
            // A subscribe still waiting for its confirmation is moot now.
            result.moot.forEach { $0.succeed() }
            if result.reconnected { self.yield(.reconnected) }
            return self.perform(result.action, command: self.state.mode.unsubscribeCommand, waiters: result.waiters)
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

    /// Nothing periodic beyond the health check, which runs on the event loop: returns when cancelled.
    public func run() async {
        while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
    }

    // MARK: - On the event loop

    private func setUp() {
        connection.onPush = { [weak self] push in self?.handle(push) }
        connection.onReady = { [weak self] channel, handler, isReconnect in
            self?.connected(channel, handler: handler, isReconnect: isReconnect)
        }
        connection.start()
        healthTimer = eventLoop.scheduleRepeatedTask(initialDelay: healthCheckInterval, delay: healthCheckInterval) {
            [weak self] _ in self?.checkHealth()
        }
    }

    /// A PING per interval; one still unanswered at the next check means the link is dead although open: close it,
    /// and the connection reconnects (and resubscribes).
    private func checkHealth() {
        let (ping, stale) = state.healthCheck()
        if ping { connection.sendWithoutReply(RedisCommand("PING")) }
        if stale, let link {
            logger.warning("Redis subscriber silent: reconnecting", metadata: ["interval_ms": "\(healthCheckInterval.nanoseconds / 1_000_000)"])
            link.close(promise: nil)
        }
    }

    private func connected(_ channel: any Channel, handler: RedisPipelineHandler, isReconnect: Bool) {
        handler.subscriptionMode = true
        link = channel
        channel.closeFuture.whenComplete { [weak self] _ in
            guard let self else { return }
            if self.link === channel { self.link = nil }
            self.state.disconnected()
            self.onLink?(false)
        }
        onLink?(true)
        let (batches, reconnected) = state.connected(isReconnect: isReconnect)
        for batch in batches { connection.sendWithoutReply(RedisCommand(state.mode.subscribeCommand, batch)) }
        if reconnected { yield(.reconnected) }
    }

    private func yield(_ event: RedisSubscriberEvent) {
        if let sink { sink(event) } else { continuation.yield(event) }
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
        case .wait(let batches, let confirmations):
            for batch in batches { connection.sendWithoutReply(RedisCommand(command, batch)) }
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
            yield(.message(channel: channel, payload: payload))
        case .confirmed(let waiters, let reconnected):
            waiters.forEach { $0.succeed() }
            if reconnected { yield(.reconnected) }
        case .refused(let waiters, let channels, let error, let reconnected):
            logger.warning("Redis refused a subscription command", metadata: ["error": "\(error)", "channels": "\(channels.count)"])
            waiters.forEach { $0.fail(RedisError.server(error)) }
            if !channels.isEmpty, let onLost {
                // Sharded: no longer wanted here; the owner routes them again.
                state.forget(channels)
                onLost(channels, error)
            }
            if reconnected { yield(.reconnected) }
        case .dropped(let channels):
            onLost?(channels, nil)
        }
    }
}
