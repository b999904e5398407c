import Logging
import NIOCore
import NIOPosix

/// One multiplexed, self-healing connection to Redis.
///
/// Any number of callers share it: their commands are pipelined (written back to back, coalesced into one
/// flush per event-loop tick) and replies are matched in order. When the server closes or restarts, the
/// connection reconnects by itself with capped exponential backoff; meanwhile commands wait for it, at most
/// the configured bounded wait, then fail with ``RedisError/unavailable(_:)``.
///
/// The rules live in ``RedisConnectionStateMachine``; this class feeds it events and carries out its actions (connect,
/// write, schedule timers, complete promises). All mutable state is confined to ``eventLoop``; public methods may be
/// called from anywhere.
public final class RedisConnection: @unchecked Sendable {
    /// The event loop that owns this connection's socket and state.
    public let eventLoop: any EventLoop
    let configuration: RedisConfiguration
    let logger: Logger

    private var state: RedisConnectionStateMachine<any Channel, RedisRequest>
    private var waitingTimer: RepeatedTask?
    private var reconnectTask: Scheduled<Void>?
    private var flushScheduled = false
    /// Where to connect when the node may be any of several (a cluster subscriber); each attempt takes the next.
    private let endpoints: (@Sendable () -> [RedisConfiguration.Endpoint])?
    private var attempt = 0
    /// The endpoint of the current or last attempt.
    private var endpoint: RedisConfiguration.Endpoint

    /// Called on ``eventLoop`` each time a connection is established and its handshake done, before queued
    /// commands go out. The flag says whether this is a reconnect. A subscriber uses it to (re)subscribe.
    var onReady: ((_ channel: any Channel, _ handler: RedisPipelineHandler, _ isReconnect: Bool) -> Void)?
    /// Pub/sub pushes, for a subscriber connection.
    var onPush: ((RESPValue) -> Void)?

    /// Creates a connection; it connects on ``start()`` or on the first command. With `endpoints`, each connect attempt
    /// goes to the next endpoint of the list it returns (a connection that may use any node of a cluster).
    public init(
        configuration: RedisConfiguration, eventLoop: any EventLoop, logger: Logger,
        endpoints: (@Sendable () -> [RedisConfiguration.Endpoint])? = nil
    ) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.endpoints = endpoints
        self.endpoint = configuration.endpoint
        self.state = RedisConnectionStateMachine(
            backoff: Backoff(base: configuration.reconnectBaseDelay, cap: configuration.reconnectMaxDelay),
            maxWaiting: configuration.maxQueuedWhileDisconnected,
            endpoint: "\(configuration.endpoint)",
            failFast: configuration.failFastWhenUnreachable
        )
    }

    /// Starts connecting (idempotent).
    public func start() {
        onLoop { connection in
            if connection.state.start() { connection.connect() }
        }
    }

    /// Sends one command; completes with its reply (error replies included, as ``RESPValue/error(_:)``).
    public func send(_ command: RedisCommand, timeout: TimeAmount? = nil) -> EventLoopFuture<RESPValue> {
        let promise = eventLoop.makePromise(of: RESPValue.self)
        let request = RedisRequest(
            payload: RESPEncoder.encode(command),
            replyCount: 1,
            deadline: .now() + (timeout ?? configuration.commandTimeout),
            responder: .single(promise)
        )
        onLoop { $0.enqueue(request) }
        return promise.futureResult
    }

    /// Sends several commands in one write; completes with all their replies, in order.
    public func send(batch commands: [RedisCommand], timeout: TimeAmount? = nil) -> EventLoopFuture<[RESPValue]> {
        guard !commands.isEmpty else { return eventLoop.makeSucceededFuture([]) }
        let promise = eventLoop.makePromise(of: [RESPValue].self)
        var payload = ByteBufferAllocator().buffer(capacity: 64 * commands.count)
        for command in commands { RESPEncoder.encode(command, into: &payload) }
        let request = RedisRequest(
            payload: payload,
            replyCount: commands.count,
            deadline: .now() + (timeout ?? configuration.commandTimeout),
            responder: .batch(promise)
        )
        onLoop { $0.enqueue(request) }
        return promise.futureResult
    }

    /// Writes raw RESP bytes that produce no reply matched to a request (pub/sub SUBSCRIBE/UNSUBSCRIBE,
    /// whose confirmations arrive as pushes). Dropped when not connected: the subscriber resubscribes on ready.
    func sendWithoutReply(_ command: RedisCommand) {
        let request = RedisRequest(
            payload: RESPEncoder.encode(command), replyCount: 0, deadline: .distantFuture, responder: .none
        )
        onLoop { connection in
            connection.state.readyChannel?.writeAndFlush(request, promise: nil)
        }
    }

    /// Closes the socket and fails whatever still waits; no reconnect follows.
    public func close() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            let action = self.state.close()
            self.reconnectTask?.cancel()
            self.reconnectTask = nil
            self.waitingTimer?.cancel()
            self.waitingTimer = nil
            for request in action.fail { request.responder.fail(.shutdown) }
            guard let channel = action.channel else { return self.eventLoop.makeSucceededVoidFuture() }
            return channel.close().recover { _ in }
        }
    }

    // MARK: - On the event loop

    private func onLoop(_ body: @escaping @Sendable (RedisConnection) -> Void) {
        if eventLoop.inEventLoop {
            body(self)
        } else {
            eventLoop.execute { body(self) }
        }
    }

    private func enqueue(_ request: RedisRequest) {
        switch state.request(request, deadline: request.deadline) {
        case .write(let request, let channel):
            write(request, to: channel)
        case .fail(let request, let error):
            request.responder.fail(error)
        case .wait(let startTimer, let connect):
            if startTimer {
                waitingTimer = eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(50), delay: .milliseconds(50)) {
                    [self] task in
                    let (expired, error, stop) = self.state.waitingTimerFired(now: .now())
                    for request in expired { request.responder.fail(error) }
                    if stop {
                        task.cancel()
                        self.waitingTimer = nil
                    }
                }
            }
            if connect { self.connect() }
        }
    }

    private func write(_ request: RedisRequest, to channel: any Channel) {
        let responder = request.responder
        let writePromise = eventLoop.makePromise(of: Void.self)
        writePromise.futureResult.whenFailure { _ in responder.fail(.connectionLost) }
        channel.write(request, promise: writePromise)
        if !flushScheduled {
            flushScheduled = true
            // Everything enqueued before this task runs goes out in the same flush.
            eventLoop.execute {
                self.flushScheduled = false
                self.state.readyChannel?.flush()
            }
        }
    }

    /// Opens a socket and does the handshake; the state machine is in `connecting`.
    private func connect() {
        reconnectTask = nil
        let configuration = self.configuration
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RESPDecoderHandler())
                    try channel.pipeline.syncOperations.addHandler(RedisPipelineHandler(stallTimeout: configuration.commandTimeout))
                    try channel.pipeline.syncOperations.addHandler(ErrorSink())
                }
            }
        if let candidates = endpoints?(), !candidates.isEmpty {
            endpoint = candidates[attempt % candidates.count]
            attempt &+= 1
        }
        let endpoint = self.endpoint
        let connectFuture: EventLoopFuture<any Channel>
        switch endpoint {
        case .tcp(let host, let port):
            connectFuture = bootstrap.connect(host: host, port: port)
        case .unixSocket(let path):
            connectFuture = bootstrap.connect(unixDomainSocketPath: path)
        }
        connectFuture.flatMap { channel -> EventLoopFuture<any Channel> in
            self.handshake(on: channel).map { channel }.flatMapErrorThrowing { error in
                channel.close(promise: nil)
                throw error
            }
        }.whenComplete { result in
            switch result {
            case .success(let channel):
                self.connected(channel)
            case .failure(let error):
                let reason = Self.describe(error)
                let action = self.state.connectFailed(endpoint: "\(endpoint)", reason: reason)
                self.down(action, metadata: ["redis": "\(endpoint)", "reason": "\(reason)"])
                let (refused, error) = self.state.takeWaitingIfUnreachable()
                for request in refused { request.responder.fail(error) }
            }
        }
    }

    private func handshake(on channel: any Channel) -> EventLoopFuture<Void> {
        var commands: [RedisCommand] = []
        if let password = configuration.password {
            if let username = configuration.username {
                commands.append(RedisCommand("AUTH", username, password))
            } else {
                commands.append(RedisCommand("AUTH", password))
            }
        }
        if configuration.database != 0 {
            commands.append(RedisCommand("SELECT", String(configuration.database)))
        }
        // AUTH and SELECT must succeed; a script that fails to load is logged, and the call that uses it later gets
        // the error.
        let required = commands.count
        commands += configuration.preloadScripts.map { RedisCommand("SCRIPT", "LOAD", $0.source) }
        guard !commands.isEmpty else { return eventLoop.makeSucceededVoidFuture() }
        let sent = commands
        let logger = self.logger
        let promise = eventLoop.makePromise(of: [RESPValue].self)
        var payload = channel.allocator.buffer(capacity: 64)
        for command in commands { RESPEncoder.encode(command, into: &payload) }
        let request = RedisRequest(
            payload: payload, replyCount: commands.count,
            deadline: .now() + configuration.connectTimeout, responder: .batch(promise)
        )
        channel.writeAndFlush(request, promise: nil)
        return promise.futureResult.flatMapThrowing { replies in
            for (index, (command, reply)) in zip(sent, replies).enumerated() {
                guard case .error(let message) = reply else { continue }
                if index < required { throw RedisError.server("\(command.name) failed: \(message)") }
                logger.error("SCRIPT LOAD failed", metadata: ["error": "\(message)"])
            }
        }
    }

    private func connected(_ channel: any Channel) {
        guard let handler = try? channel.pipeline.syncOperations.handler(type: RedisPipelineHandler.self) else {
            channel.close(promise: nil)
            return
        }
        switch state.connectSucceeded(channel, id: ObjectIdentifier(channel)) {
        case .closeChannel(let channel):
            channel.close(promise: nil)  // closed meanwhile
        case .ready(let channel, let isReconnect, let restored, let flush):
            if let onPush { handler.onPush = onPush }
            let endpoint = self.endpoint
            if restored {
                logger.info("Redis connection restored", metadata: ["redis": "\(endpoint)"])
            } else {
                logger.debug("Redis connected", metadata: ["redis": "\(endpoint)"])
            }
            channel.closeFuture.whenComplete { _ in
                let action = self.state.channelClosed(id: ObjectIdentifier(channel), endpoint: "\(endpoint)")
                self.down(action, metadata: ["redis": "\(endpoint)"])
            }
            onReady?(channel, handler, isReconnect)
            for request in flush { write(request, to: channel) }
        }
    }

    private func down(_ action: RedisConnectionStateMachine<any Channel, RedisRequest>.DownAction, metadata: Logger.Metadata) {
        guard case .scheduleReconnect(let delay, let warning) = action else { return }
        if let warning { logger.warning("\(warning)", metadata: metadata) }
        reconnectTask = eventLoop.scheduleTask(in: delay) {
            if self.state.reconnectTimerFired() { self.connect() }
        }
    }

    private static func describe(_ error: any Error) -> String {
        if let redisError = error as? RedisError { return redisError.description }
        if let ioError = error as? IOError { return ioError.description }
        if error is ChannelError { return "\(error)" }
        return String(describing: error)
    }
}

/// Swallows errors at the tail of the pipeline: each is already reported to the requests it concerns,
/// and the channel is closed where it must be.
private final class ErrorSink: ChannelInboundHandler {
    typealias InboundIn = Never
    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}
