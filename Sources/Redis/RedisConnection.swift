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
/// All mutable state is confined to ``eventLoop``; public methods may be called from anywhere.
public final class RedisConnection: @unchecked Sendable {
    /// The event loop that owns this connection's socket and state.
    public let eventLoop: any EventLoop
    let configuration: RedisConfiguration
    let logger: Logger

    private enum State {
        case idle
        case connecting
        case ready(any Channel)
        case waitingToReconnect
        case closed
    }

    private var state: State = .idle
    private var waiting = CircularBuffer<RedisRequest>()
    private var waitingTimer: RepeatedTask?
    private var reconnectTask: Scheduled<Void>?
    private var backoff: Backoff
    private var lastFailure = "not connected yet"
    private var flushScheduled = false
    private var everConnected = false
    private var loggedDown = false

    /// Called on ``eventLoop`` each time a connection is established and its handshake done, before queued
    /// commands go out. The flag says whether this is a reconnect. A subscriber uses it to (re)subscribe.
    var onReady: ((_ channel: any Channel, _ handler: RedisPipelineHandler, _ isReconnect: Bool) -> Void)?
    /// Pub/sub pushes, for a subscriber connection.
    var onPush: ((RESPValue) -> Void)?

    /// Creates a connection; it connects on ``start()`` or on the first command.
    public init(configuration: RedisConfiguration, eventLoop: any EventLoop, logger: Logger) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.backoff = Backoff(base: configuration.reconnectBaseDelay, cap: configuration.reconnectMaxDelay)
    }

    /// Starts connecting (idempotent).
    public func start() {
        onLoop { $0.startOnLoop() }
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
            guard case .ready(let channel) = connection.state else { return }
            channel.writeAndFlush(request, promise: nil)
        }
    }

    /// Closes the socket and fails whatever still waits; no reconnect follows.
    public func close() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            let previous = self.state
            self.state = .closed
            self.reconnectTask?.cancel()
            self.reconnectTask = nil
            self.waitingTimer?.cancel()
            self.waitingTimer = nil
            while let request = self.waiting.popFirst() { request.responder.fail(.shutdown) }
            if case .ready(let channel) = previous {
                return channel.close().recover { _ in }
            }
            return self.eventLoop.makeSucceededVoidFuture()
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

    private func startOnLoop() {
        guard case .idle = state else { return }
        connect()
    }

    private func enqueue(_ request: RedisRequest) {
        switch state {
        case .ready(let channel):
            write(request, to: channel)
        case .closed:
            request.responder.fail(.shutdown)
        case .idle:
            waitForConnection(request)
            connect()
        case .connecting, .waitingToReconnect:
            waitForConnection(request)
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
                if case .ready(let channel) = self.state { channel.flush() }
            }
        }
    }

    private func waitForConnection(_ request: RedisRequest) {
        guard waiting.count < configuration.maxQueuedWhileDisconnected else {
            request.responder.fail(.unavailable("\(lastFailure) (\(waiting.count) commands already waiting)"))
            return
        }
        waiting.append(request)
        if waitingTimer == nil {
            waitingTimer = eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(50), delay: .milliseconds(50)) {
                [self] task in
                self.expireWaiting()
                if self.waiting.isEmpty {
                    task.cancel()
                    self.waitingTimer = nil
                }
            }
        }
    }

    private func expireWaiting() {
        let now = NIODeadline.now()
        guard waiting.contains(where: { $0.deadline <= now }) else { return }
        var kept = CircularBuffer<RedisRequest>(initialCapacity: waiting.count)
        while let request = waiting.popFirst() {
            if request.deadline <= now {
                request.responder.fail(.unavailable(lastFailure))
            } else {
                kept.append(request)
            }
        }
        waiting = kept
    }

    private func connect() {
        switch state {
        case .idle, .waitingToReconnect: break
        default: return
        }
        state = .connecting
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
        let connectFuture: EventLoopFuture<any Channel>
        switch configuration.endpoint {
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
                self.connectFailed(Self.describe(error))
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
        guard !commands.isEmpty else { return eventLoop.makeSucceededVoidFuture() }
        let sent = commands
        let promise = eventLoop.makePromise(of: [RESPValue].self)
        var payload = channel.allocator.buffer(capacity: 64)
        for command in commands { RESPEncoder.encode(command, into: &payload) }
        let request = RedisRequest(
            payload: payload, replyCount: commands.count,
            deadline: .now() + configuration.connectTimeout, responder: .batch(promise)
        )
        channel.writeAndFlush(request, promise: nil)
        return promise.futureResult.flatMapThrowing { replies in
            for (command, reply) in zip(sent, replies) {
                if case .error(let message) = reply {
                    throw RedisError.server("\(command.name) failed: \(message)")
                }
            }
        }
    }

    private func connected(_ channel: any Channel) {
        guard case .connecting = state,
              let handler = try? channel.pipeline.syncOperations.handler(type: RedisPipelineHandler.self)
        else {
            channel.close(promise: nil)  // closed meanwhile
            return
        }
        if let onPush { handler.onPush = onPush }
        let isReconnect = everConnected
        everConnected = true
        backoff.reset()
        state = .ready(channel)
        if loggedDown {
            logger.info("Redis connection restored", metadata: ["redis": "\(configuration.endpoint)"])
            loggedDown = false
        } else {
            logger.debug("Redis connected", metadata: ["redis": "\(configuration.endpoint)"])
        }
        channel.closeFuture.whenComplete { _ in self.disconnected(channel) }
        onReady?(channel, handler, isReconnect)
        while let request = waiting.popFirst() { write(request, to: channel) }
    }

    private func disconnected(_ channel: any Channel) {
        guard case .ready(let current) = state, current === channel else { return }
        lastFailure = "connection to \(configuration.endpoint) lost"
        logger.warning("Redis connection lost; reconnecting", metadata: ["redis": "\(configuration.endpoint)"])
        loggedDown = true
        state = .waitingToReconnect
        scheduleReconnect()
    }

    private func connectFailed(_ reason: String) {
        guard case .connecting = state else { return }
        lastFailure = "cannot connect to \(configuration.endpoint): \(reason)"
        if !loggedDown {
            logger.warning("Redis unreachable; retrying", metadata: [
                "redis": "\(configuration.endpoint)", "reason": "\(reason)",
            ])
            loggedDown = true
        }
        state = .waitingToReconnect
        scheduleReconnect()
    }

    private func scheduleReconnect() {
        let delay = backoff.next()
        reconnectTask = eventLoop.scheduleTask(in: delay) { self.connect() }
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
