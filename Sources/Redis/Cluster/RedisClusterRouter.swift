import Logging
import Metrics
import NIOCore
import Synchronization

/// The cluster side of ``RedisClient``: the slot map, a pool of multiplexed connections per node, and topology
/// refreshes (at start, periodically, after MOVED, CLUSTERDOWN or a lost connection).
///
/// The map is read from every seed and known primary that answers, and the layout most of them report wins
/// (``RedisClusterTopology/choose(_:)``). Concurrent refresh requests share one refresh.
final class RedisClusterRouter: Sendable {
    typealias Endpoint = RedisClusterTopology.Endpoint

    let configuration: RedisConfiguration
    let seeds: [Endpoint]
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger

    private struct State {
        var topology: RedisClusterTopology?
        var pools: [Endpoint: [RedisConnection]] = [:]
        var nextConnection = 0
        var refresh: Task<RedisClusterTopology?, Never>?
        /// When the last refresh that read a map ended.
        var refreshed: ContinuousClock.Instant?
        var closed = false
    }

    private let state = Mutex(State())

    init(configuration: RedisConfiguration, seeds: [Endpoint], eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.seeds = seeds
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    /// The slot map, waiting for the first one to be read (within the bounded wait).
    func topology() async throws -> RedisClusterTopology {
        if let topology = state.withLock({ $0.topology }) { return topology }
        if let topology = await refresh() { return topology }
        throw RedisError.unavailable("no Redis Cluster node among \(seeds.map(\.description).joined(separator: ", ")) described the cluster")
    }

    /// The last slot map read, if any.
    var currentTopology: RedisClusterTopology? { state.withLock { $0.topology } }

    /// The primary for `slot` by the current map, reading it first if need be (see ``node(forSlot:orderKey:in:)``).
    func node(forSlot slot: Int?, orderKey: String? = nil) async throws -> Endpoint {
        do {
            return try Self.node(forSlot: slot, orderKey: orderKey, in: try await topology())
        } catch {
            requestRefresh()
            throw error
        }
    }

    /// The primary for `slot` in `topology`; `nil` is a command without keys, which goes to the primary `orderKey`
    /// picks (the same for every call with that key), or the first. Throws ``RedisError/unavailable(_:)`` when no
    /// primary serves the slot.
    static func node(forSlot slot: Int?, orderKey: String?, in topology: RedisClusterTopology) throws(RedisError) -> Endpoint {
        guard let slot else {
            let primaries = topology.primaries
            guard !primaries.isEmpty else { throw RedisError.unavailable("the Redis Cluster serves no slots") }
            return primaries[orderKey.map { Int(hash($0) % UInt64(primaries.count)) } ?? 0]
        }
        guard let node = topology.primary(forSlot: slot) else {
            throw RedisError.unavailable("no Redis Cluster primary serves slot \(slot)")
        }
        return node
    }

    /// A connection to `node`: the one `orderKey` picks (the same for every call with that key), or the next.
    func connection(to node: Endpoint, orderKey: String? = nil) -> RedisConnection {
        state.withLock { state in
            let pool: [RedisConnection]
            if let existing = state.pools[node] {
                pool = existing
            } else {
                var nodeConfiguration = configuration
                nodeConfiguration.endpoint = .tcp(host: node.host, port: node.port)
                nodeConfiguration.clusterSeeds = []
                nodeConfiguration.failFastWhenUnreachable = true
                pool = (0..<configuration.connectionCount).map { _ in
                    RedisConnection(configuration: nodeConfiguration, eventLoop: eventLoopGroup.next(), logger: logger)
                }
                state.pools[node] = pool
                if state.closed { pool.forEach { _ = $0.close() } }
            }
            if pool.count == 1 { return pool[0] }
            if let orderKey { return pool[Int(Self.hash(orderKey) % UInt64(pool.count))] }
            state.nextConnection &+= 1
            return pool[state.nextConnection % pool.count]
        }
    }

    /// A MOVED redirect: `slot` lives at `node` now. The map learns it at once; a full refresh follows.
    func moved(slot: Int, to node: Endpoint) {
        state.withLock { $0.topology?.assign(slot: slot, to: node) }
        requestRefresh()
    }

    /// Starts a refresh without waiting for it (see ``refreshIfStale()``).
    func requestRefresh() {
        Task { _ = await self.refreshIfStale() }
    }

    /// How old a map may be and still count as just read: failing requests ask for refreshes in bursts (every request
    /// to a dead node does), and one read per interval answers them all.
    static let freshness: Duration = .milliseconds(50)

    /// A refresh, unless one ended less than ``freshness`` ago (then the map it read) or one is running (then its map).
    @discardableResult
    func refreshIfStale() async -> RedisClusterTopology? {
        let fresh: RedisClusterTopology? = state.withLock { state in
            guard state.refresh == nil, let refreshed = state.refreshed, refreshed.duration(to: .now) < Self.freshness else {
                return nil
            }
            return state.topology
        }
        if let fresh { return fresh }
        return await refresh()
    }

    /// Reads the layout from every seed and known primary, keeps the one most report, and drops the connections of
    /// nodes that are no longer primaries. Concurrent calls share one refresh. `nil` when no node answered.
    @discardableResult
    func refresh() async -> RedisClusterTopology? {
        let task: Task<RedisClusterTopology?, Never> = state.withLock { state in
            if let running = state.refresh { return running }
            let task = Task { await self.readTopology() }
            state.refresh = task
            return task
        }
        let topology = await task.value
        let dropped: [RedisConnection] = state.withLock { state in
            if state.refresh == task { state.refresh = nil }
            guard let topology else { return [] }
            state.topology = topology
            state.refreshed = .now
            // Seeds keep their connections: they are asked at every refresh.
            let wanted = Set(topology.primaries + seeds)
            let stale = state.pools.keys.filter { !wanted.contains($0) }
            return stale.flatMap { state.pools.removeValue(forKey: $0) ?? [] }
        }
        for connection in dropped { _ = connection.close() }
        Gauge(label: "redis_cluster_slots_served").record(topology?.servedSlots ?? 0)
        Counter(label: "redis_cluster_topology_refreshes_total", dimensions: [("result", topology == nil ? "failed" : "ok")]).increment()
        return topology
    }

    /// Every node to try for a connection that may go to any node (the pub/sub subscriber): known primaries, then seeds.
    var anyNodes: [Endpoint] {
        let primaries = state.withLock { $0.topology?.primaries ?? [] }
        return primaries + seeds.filter { !primaries.contains($0) }
    }

    /// Closes every connection; later commands fail with ``RedisError/shutdown``.
    func close() async {
        let pools = state.withLock { state in
            state.closed = true
            state.refresh?.cancel()
            return state.pools.values.flatMap { $0 }
        }
        for connection in pools { try? await connection.close().get() }
    }

    private func readTopology() async -> RedisClusterTopology? {
        let candidates = Array(Set(seeds + state.withLock { $0.topology?.primaries ?? [] }))
        let timeout = configuration.commandTimeout
        let answers = await withTaskGroup(of: (node: Endpoint, topology: RedisClusterTopology)?.self) { group in
            for node in candidates {
                group.addTask { await self.askTopology(of: node, timeout: timeout).map { (node, $0) } }
            }
            var answers: [(node: Endpoint, topology: RedisClusterTopology)] = []
            for await answer in group { if let answer { answers.append(answer) } }
            return answers
        }
        guard let chosen = RedisClusterTopology.choose(answersByNode: answers) else {
            logger.warning("Redis Cluster topology unavailable", metadata: ["nodes": "\(candidates.map(\.description))"])
            return nil
        }
        return chosen
    }

    /// One node's view: `CLUSTER SHARDS`, or `CLUSTER SLOTS` where that is unknown.
    private func askTopology(of node: Endpoint, timeout: TimeAmount) async -> RedisClusterTopology? {
        let connection = connection(to: node)
        do {
            let shards = try await connection.send(RedisCommand("CLUSTER", "SHARDS"), timeout: timeout).get()
            if shards.errorMessage == nil { return try RedisClusterTopology.parse(shards: shards, answeredBy: node) }
            let slots = try await connection.send(RedisCommand("CLUSTER", "SLOTS"), timeout: timeout).get()
            if let message = slots.errorMessage { throw RedisError.server(message) }
            return try RedisClusterTopology.parse(slots: slots, answeredBy: node)
        } catch {
            logger.debug("Redis Cluster node did not describe the cluster", metadata: ["node": "\(node)", "error": "\(error)"])
            return nil
        }
    }

    /// FNV-1a: the same in every process.
    static func hash(_ key: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }
}
