import Logging
import NIOCore
import Synchronization

/// Sharded pub/sub on a Redis Cluster: one ``RedisSubscriber`` in sharded mode per primary, each channel subscribed
/// (`SSUBSCRIBE`, one slot per command) on the primary that serves its slot, so a message published with `SPUBLISH`
/// travels to that primary's subscribers only instead of over the whole cluster bus.
///
/// A channel whose slot moved (Redis unsubscribes it by itself: an unsolicited `sunsubscribe`), that a node refused
/// (`MOVED`, `CLUSTERDOWN`) or whose node is gone is routed again from a fresh topology, and every move is followed by
/// ``RedisSubscriberEvent/reconnected``, since messages may have been missed meanwhile. Each node's subscriber pings its
/// connection and reconnects a silent one. ``run()`` does the periodic routing; the owner runs it.
public final class RedisShardedSubscriber: RedisPubSub, @unchecked Sendable {
    public let events: AsyncStream<RedisSubscriberEvent>

    private struct State {
        /// Every wanted channel → the primary it is subscribed on (`nil`: waiting to be routed).
        var wanted: [String: RedisClusterTopology.Endpoint?] = [:]
        var nodes: [RedisClusterTopology.Endpoint: RedisSubscriber] = [:]
        /// Callers waiting for channels that had no route yet to be subscribed.
        var routeWaiters: [String: [EventLoopPromise<Void>]] = [:]
        /// Some wanted channel has no route (set with every `nil` in ``wanted``, cleared by a pass that routed them all).
        var needsRouting = false
        /// The slot map of the last routing pass: a pass under the same map with nothing unrouted has nothing to do.
        var routedWith: RedisClusterTopology?
        /// Nodes whose connection is down now.
        var down: Set<RedisClusterTopology.Endpoint> = []
        var closed = false
    }

    private let router: RedisClusterRouter
    private let configuration: RedisConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let healthCheckInterval: TimeAmount
    private let continuation: AsyncStream<RedisSubscriberEvent>.Continuation
    private let state = Mutex(State())
    /// Woken when a channel needs routing (lost, refused) so ``run()`` does not wait for its next tick.
    private let wake: AsyncStream<Void>.Continuation
    private let wakeups: AsyncStream<Void>

    init(router: RedisClusterRouter, configuration: RedisConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger, healthCheckInterval: TimeAmount) {
        self.router = router
        var configuration = configuration
        configuration.preloadScripts = []
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.healthCheckInterval = healthCheckInterval
        (events, continuation) = AsyncStream.makeStream()
        (wakeups, wake) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// The primary that serves `channel`'s slot in the topology in hand; `nil` when none is known yet.
    func owner(of channel: String) -> RedisClusterTopology.Endpoint? {
        router.currentTopology?.primary(forSlot: RedisHashSlot.slot(for: channel))
    }

    public func requestSubscribe(_ channels: [String]) -> EventLoopFuture<Void> {
        let loop = eventLoopGroup.any()
        var futures: [EventLoopFuture<Void>] = []
        var unrouted = false
        state.withLock { state in
            guard !state.closed else { return }
            for channel in Set(channels) where state.wanted[channel] == nil {
                if let node = owner(of: channel) {
                    state.wanted[channel] = .some(node)
                    futures.append(subscriber(for: node, in: &state).requestSubscribe([channel]))
                } else {
                    state.wanted[channel] = .some(nil)
                    state.needsRouting = true
                    let promise = loop.makePromise(of: Void.self)
                    state.routeWaiters[channel, default: []].append(promise)
                    futures.append(promise.futureResult)
                    unrouted = true
                    // As long as a subscriber waits for a connection: then the caller hears it failed, while the
                    // channel stays wanted and is subscribed as soon as ``run()`` routes it.
                    loop.scheduleTask(in: configuration.commandTimeout) { [weak self] in
                        guard let self else { return }
                        let expired = self.state.withLock { state -> Bool in
                            guard let index = state.routeWaiters[channel]?.firstIndex(where: { $0.futureResult === promise.futureResult }) else {
                                return false
                            }
                            state.routeWaiters[channel]?.remove(at: index)
                            return true
                        }
                        if expired { promise.fail(RedisError.unavailable("no route to the node of \(channel) yet")) }
                    }
                }
            }
        }
        if unrouted {
            router.requestRefresh()
            wake.yield()
        }
        return EventLoopFuture.andAllSucceed(futures, on: loop)
    }

    public func requestUnsubscribe(_ channels: [String]) -> EventLoopFuture<Void> {
        let loop = eventLoopGroup.any()
        let futures: [EventLoopFuture<Void>] = state.withLock { state in
            Set(channels).compactMap { channel -> EventLoopFuture<Void>? in
                // A subscribe still waiting for its route is moot now.
                state.routeWaiters.removeValue(forKey: channel)?.forEach { $0.succeed() }
                guard let assigned = state.wanted.removeValue(forKey: channel) else { return nil }
                guard let node = assigned, let subscriber = state.nodes[node] else { return nil }
                return subscriber.requestUnsubscribe([channel])
            }
        }
        return EventLoopFuture.andAllSucceed(futures, on: loop)
    }

    public var subscribedChannels: Set<String> {
        get async { state.withLock { Set($0.wanted.keys) } }
    }

    public func compact() {
        let nodes = state.withLock { state in
            state.wanted = Dictionary(uniqueKeysWithValues: state.wanted.map { ($0.key, $0.value) })
            return Array(state.nodes.values)
        }
        for node in nodes { node.compact() }
    }

    public func close() async {
        let nodes = state.withLock { state in
            state.closed = true
            state.wanted = [:]
            state.routeWaiters.values.joined().forEach { $0.fail(RedisError.shutdown) }
            state.routeWaiters = [:]
            defer { state.nodes = [:] }
            return Array(state.nodes.values)
        }
        for node in nodes { await node.close() }
        continuation.finish()
        wake.finish()
    }

    /// Routes again, until cancelled: at once when a channel was lost or refused, otherwise every
    /// `healthCheckInterval` (a failover is seen once the topology in hand changes; a node that stays down asks for a
    /// fresh topology).
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [wake] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .nanoseconds(self.healthCheckInterval.nanoseconds))
                    wake.yield()
                }
            }
            for await _ in wakeups {
                if Task.isCancelled { break }
                await reroute()
            }
            group.cancelAll()
        }
    }

    /// Moves every channel not on the primary that serves its slot now (and subscribes the unrouted ones); closes
    /// the subscribers of nodes that are no longer primaries and hold nothing.
    func reroute() async {
        let needsTopology = state.withLock { $0.needsRouting || !$0.down.isEmpty }
        if needsTopology { _ = await router.refresh() }
        guard let topology = router.currentTopology else { return }
        let (moved, idle): (Int, [RedisSubscriber]) = state.withLock { state in
            // Every tick: skip the walk over every channel while nothing changed.
            guard !state.closed, needsTopology || topology != state.routedWith else { return (0, []) }
            var moved = 0
            var byNode: [RedisClusterTopology.Endpoint: [String]] = [:]
            var leaving: [RedisClusterTopology.Endpoint: [String]] = [:]
            for (channel, assigned) in state.wanted {
                guard let owner = topology.primary(forSlot: RedisHashSlot.slot(for: channel)), owner != assigned else { continue }
                if let old = assigned { leaving[old, default: []].append(channel) }
                byNode[owner, default: []].append(channel)
                state.wanted[channel] = .some(owner)
                moved += 1
            }
            for (node, channels) in leaving { _ = state.nodes[node]?.requestUnsubscribe(channels) }
            for (node, channels) in byNode {
                let subscribed = subscriber(for: node, in: &state).requestSubscribe(channels)
                for channel in channels {
                    state.routeWaiters.removeValue(forKey: channel)?.forEach { subscribed.cascade(to: $0) }
                }
            }
            state.routedWith = topology
            state.needsRouting = state.wanted.values.contains { $0 == nil }
            let primaries = Set(topology.primaries)
            let inUse = Set(state.wanted.values.compactMap { $0 })
            var idle: [RedisSubscriber] = []
            for node in state.nodes.keys where !primaries.contains(node) && !inUse.contains(node) {
                idle.append(state.nodes.removeValue(forKey: node)!)
                state.down.remove(node)
            }
            return (moved, idle)
        }
        for subscriber in idle { await subscriber.close() }
        if moved > 0 {
            logger.info("Sharded pub/sub channels routed to their primaries", metadata: ["channels": "\(moved)"])
            // Messages published while a channel was between nodes are gone: its users re-read the state.
            continuation.yield(.reconnected)
        }
    }

    /// The subscriber of `node`, made on first use.
    private func subscriber(for node: RedisClusterTopology.Endpoint, in state: inout State) -> RedisSubscriber {
        if let existing = state.nodes[node] { return existing }
        var nodeConfiguration = configuration
        nodeConfiguration.endpoint = .tcp(host: node.host, port: node.port)
        let subscriber = RedisSubscriber(
            configuration: nodeConfiguration, eventLoop: eventLoopGroup.next(), logger: logger,
            healthCheckInterval: healthCheckInterval, endpoints: nil, mode: .sharded,
            sink: { [continuation] event in continuation.yield(event) },
            onLost: { [weak self] channels, error in self?.lost(channels, on: node, error: error) },
            onLink: { [weak self] up in self?.link(of: node, isUp: up) }
        )
        state.nodes[node] = subscriber
        return subscriber
    }

    /// A node handed channels back (refused, or dropped when their slot moved): route them again now.
    private func lost(_ channels: [String], on node: RedisClusterTopology.Endpoint, error: String?) {
        state.withLock { state in
            for channel in channels {
                if case .some(.some(let assigned)) = state.wanted[channel], assigned == node {
                    state.wanted[channel] = .some(nil)
                    state.needsRouting = true
                }
            }
        }
        logger.debug("Sharded pub/sub channels to route again", metadata: [
            "node": "\(node)", "channels": "\(channels.count)", "error": "\(error ?? "slot moved")",
        ])
        router.requestRefresh()
        wake.yield()
    }

    private func link(of node: RedisClusterTopology.Endpoint, isUp: Bool) {
        state.withLock { state in
            if isUp { state.down.remove(node) } else { state.down.insert(node) }
        }
        if !isUp { wake.yield() }
    }
}
