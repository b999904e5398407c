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
///
/// With ``RedisConfiguration/clusterSeeds`` set it talks to a Redis Cluster: each command goes to the primary of its
/// keys' slot (a call whose keys span slots is refused before it is sent), pipelines are split per node and put back
/// in order, and MOVED, ASK and retryable cluster errors are followed within the bounded wait (see
/// `RedisClient+Cluster.swift`).
public final class RedisClient: Sendable {
    /// The configuration the client was made with.
    public let configuration: RedisConfiguration
    /// The connections to one Redis (empty in cluster mode).
    let connections: [RedisConnection]
    /// The cluster side, in cluster mode.
    let cluster: RedisClusterRouter?
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
        if configuration.clusterSeeds.isEmpty {
            self.cluster = nil
            self.connections = (0..<configuration.connectionCount).map { _ in
                RedisConnection(configuration: configuration, eventLoop: eventLoopGroup.next(), logger: logger)
            }
        } else {
            self.connections = []
            self.cluster = RedisClusterRouter(
                configuration: configuration,
                seeds: configuration.clusterSeeds.compactMap {
                    guard case .tcp(let host, let port) = $0 else { return nil }
                    return RedisClusterTopology.Endpoint(host: host, port: port)
                },
                eventLoopGroup: eventLoopGroup, logger: logger
            )
        }
    }

    /// Whether this client talks to a Redis Cluster.
    public var isCluster: Bool { cluster != nil }

    /// Starts connecting every connection (idempotent); in cluster mode, reads the slot map.
    public func connect() {
        for connection in connections { connection.start() }
        cluster?.requestRefresh()
    }

    /// Closes every connection; later commands fail with ``RedisError/shutdown``.
    public func close() async {
        for connection in connections {
            try? await connection.close().get()
        }
        await cluster?.close()
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
        if let cluster { return try await clusterSend(command, on: cluster, timeout: timeout) }
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
        if let cluster { return try await clusterPipeline(commands, on: cluster, timeout: timeout) }
        return try await sendBatch(commands, timeout: timeout).get()
    }

    /// Sends `commands` in one write without waiting for them: `completion` gets the replies (error replies
    /// included) or the failure, on the connection's event loop. For follow-up work whose outcome the caller only
    /// logs. Batches given the same `orderKey` go on the same connection, so they run in the order they were sent
    /// (one user's switch events stay in the order of the switches); batches with different keys have no order.
    ///
    /// In cluster mode the promise holds per node: the commands of such batches that go to one node (same slot, or
    /// no keys at all, like `PUBLISH`) run in the order sent; a command redirected while its slot moves is sent
    /// again later and may overtake or fall behind.
    public func pipelineDetached(
        _ commands: [RedisCommand], orderKey: String, timeout: Duration? = nil,
        completion: @escaping @Sendable (Result<[RESPValue], RedisError>) -> Void
    ) {
        if let cluster {
            clusterPipelineDetached(commands, on: cluster, orderKey: orderKey, timeout: timeout, completion: completion)
            return
        }
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

    /// A new pub/sub subscriber with this client's configuration: on one Redis a ``RedisSubscriber`` (classic pub/sub,
    /// one connection); on a Redis Cluster a ``RedisShardedSubscriber`` (sharded pub/sub, a connection per primary).
    /// Publish to it with ``publishCommand(_:to:)``.
    public func makeSubscriber(healthCheckInterval: Duration = .seconds(1)) -> any RedisPubSub {
        if let cluster {
            return RedisShardedSubscriber(
                router: cluster, configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger,
                healthCheckInterval: TimeAmount(healthCheckInterval)
            )
        }
        var subscriberConfiguration = configuration
        subscriberConfiguration.preloadScripts = []
        return RedisSubscriber(
            configuration: subscriberConfiguration,
            eventLoop: eventLoopGroup.next(),
            logger: logger,
            healthCheckInterval: TimeAmount(healthCheckInterval)
        )
    }

    /// The command that publishes `message` to the subscribers ``makeSubscriber(healthCheckInterval:)`` makes:
    /// `PUBLISH` on one Redis, `SPUBLISH` on a cluster (routed to the primary of the channel's slot; classic `PUBLISH`
    /// would be copied to every node over the cluster bus).
    public func publishCommand(_ message: String, to channel: String) -> RedisCommand {
        RedisCommand(isCluster ? "SPUBLISH" : "PUBLISH", channel, message)
    }

    /// The connection every batch with this order key goes on (FNV-1a of the key: the same in every process).
    func connection(for orderKey: String) -> RedisConnection {
        if connections.count == 1 { return connections[0] }
        return connections[Int(RedisClusterRouter.hash(orderKey) % UInt64(connections.count))]
    }

    private func pick() -> RedisConnection {
        if connections.count == 1 { return connections[0] }
        let index = next.add(1, ordering: .relaxed).oldValue
        return connections[index % connections.count]
    }
}

extension RedisClient: Service {
    /// Connects, waits for graceful shutdown, then closes the connections. In cluster mode it also refreshes the
    /// slot map every ``RedisConfiguration/clusterRefreshInterval`` meanwhile.
    public func run() async throws {
        connect()
        if let cluster {
            await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .nanoseconds(self.configuration.clusterRefreshInterval.nanoseconds))
                    if !Task.isCancelled { await cluster.refresh() }
                }
            }
        } else {
            try? await gracefulShutdown()
        }
        await close()
    }
}
