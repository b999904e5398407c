import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The Redis client: a small set of multiplexed, self-healing connections shared by every caller.
///
/// Commands from concurrent tasks are spread round-robin over ``RedisConfiguration/connectionCount``
/// connections and pipelined on each. Run it as a `Service` (it connects, then closes on graceful shutdown),
/// or call ``connect()`` and ``close()`` yourself.
public final class RedisClient: Sendable {
    /// The configuration the client was made with.
    public let configuration: RedisConfiguration
    let connections: [RedisConnection]
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger
    private let next = Atomic<Int>(0)

    /// Creates a client; nothing connects until ``connect()``, ``run()`` or the first command.
    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "redis")
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.connections = (0..<configuration.connectionCount).map { _ in
            RedisConnection(configuration: configuration, eventLoop: eventLoopGroup.next(), logger: logger)
        }
    }

    /// Starts connecting every connection (idempotent).
    public func connect() {
        for connection in connections { connection.start() }
    }

    /// Closes every connection; later commands fail with ``RedisError/shutdown``.
    public func close() async {
        for connection in connections {
            try? await connection.close().get()
        }
    }

    /// Sends one command and returns its reply. An error reply throws ``RedisError/server(_:)``;
    /// every failure is a ``RedisError``.
    @discardableResult
    public func send(_ command: RedisCommand, timeout: Duration? = nil) async throws -> RESPValue {
        let reply = try await raw(command, timeout: timeout)
        if case .error(let message) = reply { throw RedisError.server(message) }
        return reply
    }

    /// Sends one command; the reply comes back as it is, error replies included.
    public func raw(_ command: RedisCommand, timeout: Duration? = nil) async throws -> RESPValue {
        let start = ContinuousClock.now
        do {
            let reply = try await pick().send(command, timeout: timeout.map(TimeAmount.init)).get()
            RedisMetrics.record(command.name, since: start, reply: reply)
            return reply
        } catch {
            let error = (error as? RedisError) ?? RedisError.connectionLost
            RedisMetrics.record(command.name, since: start, error: error)
            throw error
        }
    }

    /// Sends `commands` in one write on one connection and returns all replies in order. Error replies are
    /// returned as ``RESPValue/error(_:)`` values, not thrown, so one failing command loses no other reply.
    public func pipeline(_ commands: [RedisCommand], timeout: Duration? = nil) async throws -> [RESPValue] {
        try await sendBatch(commands, timeout: timeout).get()
    }

    /// Sends `commands` in one write without waiting for them: `completion` gets the replies (error replies
    /// included) or the failure, on the connection's event loop. For follow-up work whose outcome the caller only
    /// logs. Batches given the same `orderKey` go on the same connection, so they run in the order they were sent
    /// (one user's switch events stay in the order of the switches); batches with different keys have no order.
    public func pipelineDetached(
        _ commands: [RedisCommand], orderKey: String, timeout: Duration? = nil,
        completion: @escaping @Sendable (Result<[RESPValue], RedisError>) -> Void
    ) {
        sendBatch(commands, on: connection(for: orderKey), timeout: timeout).whenComplete { result in
            completion(result.mapError { ($0 as? RedisError) ?? .connectionLost })
        }
    }

    /// One batch on the next connection (or `connection`), timed into the metrics; a failure is always a
    /// ``RedisError``.
    private func sendBatch(_ commands: [RedisCommand], on connection: RedisConnection? = nil, timeout: Duration?) -> EventLoopFuture<[RESPValue]> {
        let start = ContinuousClock.now
        let name = commands.count == 1 ? commands[0].name : "PIPELINE"
        return (connection ?? pick()).send(batch: commands, timeout: timeout.map(TimeAmount.init)).flatMapErrorThrowing { error in
            throw (error as? RedisError) ?? RedisError.connectionLost
        }.always { result in
            switch result {
            case .success(let replies):
                RedisMetrics.record(name, since: start, reply: replies.first(where: { $0.errorMessage != nil }) ?? .null)
            case .failure(let error):
                RedisMetrics.record(name, since: start, error: (error as? RedisError) ?? .connectionLost)
            }
        }
    }

    /// A new pub/sub subscriber on a dedicated connection with this client's configuration.
    public func makeSubscriber(healthCheckInterval: Duration = .seconds(1)) -> RedisSubscriber {
        RedisSubscriber(
            configuration: configuration,
            eventLoop: eventLoopGroup.next(),
            logger: logger,
            healthCheckInterval: TimeAmount(healthCheckInterval)
        )
    }

    /// The connection every batch with this order key goes on (FNV-1a of the key: the same in every process).
    func connection(for orderKey: String) -> RedisConnection {
        if connections.count == 1 { return connections[0] }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in orderKey.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return connections[Int(hash % UInt64(connections.count))]
    }

    private func pick() -> RedisConnection {
        if connections.count == 1 { return connections[0] }
        let index = next.add(1, ordering: .relaxed).oldValue
        return connections[index % connections.count]
    }
}

extension RedisClient: Service {
    /// Connects, waits for graceful shutdown, then closes the connections.
    public func run() async throws {
        connect()
        try? await gracefulShutdown()
        await close()
    }
}
