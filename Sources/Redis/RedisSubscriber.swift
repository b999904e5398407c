import Logging
import NIOCore

/// What a ``RedisSubscriber`` delivers.
public enum RedisSubscriberEvent: Sendable, Equatable {
    /// A message published on a channel this subscriber listens to.
    case message(channel: String, payload: ByteBuffer)
    /// The connection was lost and is back, and every channel is subscribed again. Messages published
    /// meanwhile are gone (pub/sub is at-most-once): re-read whatever state they would have announced.
    case reconnected
}

/// A dedicated pub/sub connection whose messages arrive as an `AsyncSequence` (``events``).
///
/// Channels can be added and removed at any time. After a reconnect the subscriber subscribes to all of
/// them again and then yields ``RedisSubscriberEvent/reconnected``. A periodic PING notices a silent dead
/// link. State is confined to the connection's event loop.
public final class RedisSubscriber: @unchecked Sendable {
    /// Messages and reconnect signals, in order. One consumer.
    public let events: AsyncStream<RedisSubscriberEvent>
    /// Channels per SUBSCRIBE command when resubscribing after a reconnect.
    static let resubscribeBatchSize = 500

    private let connection: RedisConnection
    private let continuation: AsyncStream<RedisSubscriberEvent>.Continuation
    private let healthCheckInterval: TimeAmount
    private var eventLoop: any EventLoop { connection.eventLoop }

    private var channels = Set<String>()
    private var ready = false
    private var closed = false
    private var confirmations: [String: [EventLoopPromise<Void>]] = [:]
    private var awaitingResubscribe = Set<String>()
    private var signalReconnect = false
    private var healthTimer: RepeatedTask?

    /// Creates a subscriber with its own connection; it connects at once.
    public init(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        logger: Logger,
        healthCheckInterval: TimeAmount = .seconds(1),
        bufferingPolicy: AsyncStream<RedisSubscriberEvent>.Continuation.BufferingPolicy = .unbounded
    ) {
        self.connection = RedisConnection(configuration: configuration, eventLoop: eventLoop, logger: logger)
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
        return eventLoop.flatSubmit { self.subscribeOnLoop(channels) }
    }

    /// Queues an unsubscribe now, in call order with every other request (see ``requestSubscribe(_:)``).
    public func requestUnsubscribe(_ channels: [String]) -> EventLoopFuture<Void> {
        guard !channels.isEmpty else { return eventLoop.makeSucceededVoidFuture() }
        return eventLoop.flatSubmit { self.unsubscribeOnLoop(channels) }
    }

    /// The channels currently wanted.
    public var subscribedChannels: Set<String> {
        get async {
            (try? await eventLoop.submit { self.channels }.get()) ?? []
        }
    }

    /// Shrinks the subscriber's tables to what they hold now (they keep their largest size otherwise); call it after
    /// many channels were unsubscribed.
    public func compact() {
        eventLoop.execute {
            // Built element by element: `Set(aSet)` would keep the old storage.
            self.channels = Set(self.channels.map { $0 })
            self.confirmations = Dictionary(uniqueKeysWithValues: self.confirmations.map { ($0.key, $0.value) })
            self.awaitingResubscribe = Set(self.awaitingResubscribe.map { $0 })
        }
    }

    /// Closes the connection and finishes ``events``.
    public func close() async {
        let future: EventLoopFuture<Void> = eventLoop.flatSubmit {
            self.closed = true
            self.healthTimer?.cancel()
            self.healthTimer = nil
            for (_, promises) in self.confirmations { promises.forEach { $0.fail(RedisError.shutdown) } }
            self.confirmations = [:]
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
            if let self, self.ready { _ = self.connection.send(RedisCommand("PING")) }
        }
    }

    private func connected(_ channel: any Channel, handler: RedisPipelineHandler, isReconnect: Bool) {
        handler.subscriptionMode = true
        ready = true
        channel.closeFuture.whenComplete { [weak self] _ in self?.ready = false }
        // Resubscribe in bounded commands: one SUBSCRIBE of tens of thousands of channels is one huge write and
        // reply burst.
        let wanted = channels.sorted()
        for start in stride(from: 0, to: wanted.count, by: Self.resubscribeBatchSize) {
            connection.sendWithoutReply(RedisCommand("SUBSCRIBE", Array(wanted[start..<min(start + Self.resubscribeBatchSize, wanted.count)])))
        }
        if isReconnect {
            awaitingResubscribe = channels
            signalReconnect = true
            finishReconnectIfDone()
        }
    }

    private func finishReconnectIfDone() {
        if signalReconnect && awaitingResubscribe.isEmpty {
            signalReconnect = false
            continuation.yield(.reconnected)
        }
    }

    private func subscribeOnLoop(_ requested: [String]) -> EventLoopFuture<Void> {
        guard !closed else { return eventLoop.makeFailedFuture(RedisError.shutdown) }
        let new = Array(Set(requested).subtracting(channels))
        guard !new.isEmpty else { return eventLoop.makeSucceededVoidFuture() }
        channels.formUnion(new)
        let futures = new.map { channel -> EventLoopFuture<Void> in
            let promise = eventLoop.makePromise(of: Void.self)
            confirmations["s:" + channel, default: []].append(promise)
            return promise.futureResult
        }
        if ready { connection.sendWithoutReply(RedisCommand("SUBSCRIBE", new)) }
        return waitAll(futures, keys: new.map { "s:" + $0 })
    }

    private func unsubscribeOnLoop(_ requested: [String]) -> EventLoopFuture<Void> {
        guard !closed else { return eventLoop.makeSucceededVoidFuture() }
        let present = requested.filter { channels.contains($0) }
        guard !present.isEmpty else { return eventLoop.makeSucceededVoidFuture() }
        channels.subtract(present)
        awaitingResubscribe.subtract(present)
        for channel in present {
            // A subscribe still waiting for its confirmation is moot now.
            confirmations.removeValue(forKey: "s:" + channel)?.forEach { $0.succeed() }
        }
        finishReconnectIfDone()
        guard ready else { return eventLoop.makeSucceededVoidFuture() }
        let futures = present.map { channel -> EventLoopFuture<Void> in
            let promise = eventLoop.makePromise(of: Void.self)
            confirmations["u:" + channel, default: []].append(promise)
            return promise.futureResult
        }
        connection.sendWithoutReply(RedisCommand("UNSUBSCRIBE", present))
        return waitAll(futures, keys: present.map { "u:" + $0 })
    }

    private func waitAll(_ futures: [EventLoopFuture<Void>], keys: [String]) -> EventLoopFuture<Void> {
        let timeout = eventLoop.scheduleTask(in: connection.configuration.commandTimeout) { [weak self] in
            guard let self else { return }
            for key in keys {
                self.confirmations.removeValue(forKey: key)?.forEach {
                    $0.fail(self.ready ? RedisError.timeout : RedisError.unavailable("not connected to Redis"))
                }
            }
        }
        return EventLoopFuture.andAllSucceed(futures, on: eventLoop).always { _ in timeout.cancel() }
    }

    private func handle(_ push: RESPValue) {
        guard case .array(let items) = push, items.count >= 3, let kind = items[0].string else { return }
        switch kind {
        case "message":
            guard let channel = items[1].string, case .bulkString(let payload) = items[2] else { return }
            continuation.yield(.message(channel: channel, payload: payload))
        case "pmessage":
            guard items.count >= 4, let channel = items[2].string, case .bulkString(let payload) = items[3] else {
                return
            }
            continuation.yield(.message(channel: channel, payload: payload))
        case "subscribe":
            guard let channel = items[1].string else { return }
            confirmations.removeValue(forKey: "s:" + channel)?.forEach { $0.succeed() }
            if awaitingResubscribe.remove(channel) != nil { finishReconnectIfDone() }
        case "unsubscribe":
            guard let channel = items[1].string else { return }
            confirmations.removeValue(forKey: "u:" + channel)?.forEach { $0.succeed() }
        default:
            break
        }
    }
}
