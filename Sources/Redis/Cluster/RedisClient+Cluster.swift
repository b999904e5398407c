import Metrics
import NIOCore

/// Cluster mode: routing by slot, pipelines split per node, redirects and retries within the bounded wait.
extension RedisClient {
    /// One command to the primary of its slot, following MOVED and ASK and retrying TRYAGAIN, CLUSTERDOWN, LOADING
    /// and MASTERDOWN until the deadline (``RedisClusterRetry``). With `script`, a NOSCRIPT answer loads the script on
    /// the node that gave it (a promoted replica starts with an empty script cache) and runs the command again there,
    /// in one round trip. A command that could not be sent (``RedisError/unavailable(_:)``: its node refuses
    /// connections, or no primary serves its slot yet) goes again by a fresh slot map, which is how a failover passes
    /// unseen when the replica is promoted within the deadline. A lost connection is not retried: the command may have run.
    func clusterSend(
        _ command: RedisCommand, on cluster: RedisClusterRouter, timeout: Duration?, script: RedisScript? = nil, orderKey: String? = nil
    ) async throws -> RESPValue {
        let slot = try command.slot()
        let deadline = NIODeadline.now() + (timeout.map(TimeAmount.init) ?? configuration.commandTimeout)
        var retry = RedisClusterRetry(deadline: deadline)
        var target: RedisClusterTopology.Endpoint?
        var asking = false
        while true {
            let action: RedisClusterRetry.Action
            let reply: RESPValue
            do {
                let node: RedisClusterTopology.Endpoint
                if let target { node = target } else { node = try await cluster.node(forSlot: slot, orderKey: orderKey) }
                target = node
                var batch: [RedisCommand] = asking ? [RedisCommand("ASKING"), command] : [command]
                var answer = try await send(batch, to: node, on: cluster, deadline: deadline, name: command.name).last!
                if let script, answer.errorMessage?.hasPrefix("NOSCRIPT") == true {
                    batch.insert(RedisCommand("SCRIPT", "LOAD", script.source), at: 0)
                    answer = try await send(batch, to: node, on: cluster, deadline: deadline, name: command.name).last!
                }
                reply = answer
                action = retry.next(after: answer, from: node, now: .now())
            } catch RedisError.unavailable(let reason) {
                guard case .retry(let delay, _) = retry.nextAfterUnsent(now: .now()) else { throw RedisError.unavailable(reason) }
                Counter(label: "redis_cluster_redirects_total", dimensions: [("kind", "UNREACHABLE")]).increment()
                await cluster.refreshIfStale()
                try await Task.sleep(for: .nanoseconds(delay.nanoseconds))
                target = nil
                asking = false
                continue
            }
            switch action {
            case .done:
                return reply
            case .redirect(let next, let isAsk, let movedSlot):
                Counter(label: "redis_cluster_redirects_total", dimensions: [("kind", isAsk ? "ASK" : "MOVED")]).increment()
                if let movedSlot { cluster.moved(slot: movedSlot, to: next) }
                target = next
                asking = isAsk
            case .retry(let delay, let refresh):
                let kind = reply.errorMessage.flatMap { RedisClusterError(errorReply: $0)?.kind } ?? "retry"
                Counter(label: "redis_cluster_redirects_total", dimensions: [("kind", kind)]).increment()
                if refresh { await cluster.refresh() }
                try await Task.sleep(for: .nanoseconds(delay.nanoseconds))
                target = nil
                asking = false
            }
        }
    }

    /// A batch split by node: each node's share goes in one write, all nodes at once, and the replies come back in
    /// the caller's order. A reply that is a redirect or a retryable error is followed for that command alone.
    func clusterPipeline(_ commands: [RedisCommand], on cluster: RedisClusterRouter, timeout: Duration?, orderKey: String? = nil) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        let deadline = NIODeadline.now() + (timeout.map(TimeAmount.init) ?? configuration.commandTimeout)
        var groups: [(RedisClusterTopology.Endpoint, [Int])] = []
        var unsent = Set<Int>()
        do {
            groups = try await route(commands, on: cluster, orderKey: orderKey)
        } catch RedisError.unavailable {
            unsent = Set(commands.indices)  // a slot without a primary by the map in hand: each goes through the retries
        }
        var replies = [RESPValue](repeating: .null, count: commands.count)
        try await withThrowingTaskGroup(of: (indices: [Int], replies: [RESPValue]?).self) { group in
            for (node, indices) in groups {
                group.addTask {
                    let batch = indices.map { commands[$0] }
                    do {
                        return (indices, try await self.send(batch, to: node, on: cluster, deadline: deadline, name: "PIPELINE"))
                    } catch RedisError.unavailable {
                        return (indices, nil)  // never sent: each command goes again below
                    }
                }
            }
            for try await (indices, batchReplies) in group {
                guard let batchReplies else {
                    unsent.formUnion(indices)
                    continue
                }
                for (index, reply) in zip(indices, batchReplies) { replies[index] = reply }
            }
        }
        for index in replies.indices where unsent.contains(index) || Self.needsRouting(replies[index]) {
            let remaining = deadline - .now()
            guard remaining > .zero else { throw unsent.contains(index) ? RedisError.unavailable("no Redis Cluster node took the command in time") : RedisError.timeout }
            replies[index] = try await clusterSend(
                commands[index], on: cluster, timeout: .nanoseconds(remaining.nanoseconds), orderKey: orderKey
            )
        }
        return replies
    }

    /// ``pipelineDetached(_:orderKey:timeout:completion:)`` in cluster mode. With a slot map at hand, each node's
    /// share is queued at once on the connection `orderKey` picks (so batches with one key keep their order per node);
    /// before the first map is read, the batch waits for it.
    func clusterPipelineDetached(
        _ commands: [RedisCommand], on cluster: RedisClusterRouter, orderKey: String, timeout: Duration?,
        completion: @escaping @Sendable (Result<[RESPValue], RedisError>) -> Void
    ) {
        guard let topology = cluster.currentTopology, let groups = try? Self.route(commands, by: topology, orderKey: orderKey) else {
            Task {
                do {
                    completion(.success(try await clusterPipeline(commands, on: cluster, timeout: timeout, orderKey: orderKey)))
                } catch {
                    completion(.failure((error as? RedisError) ?? .connectionLost))
                }
            }
            return
        }
        let wait = timeout.map(TimeAmount.init) ?? configuration.commandTimeout
        let futures = groups.map { node, indices in
            cluster.connection(to: node, orderKey: orderKey).send(batch: indices.map { commands[$0] }, timeout: wait)
                .map { $0 as [RESPValue]? }
                .flatMapErrorThrowing { error -> [RESPValue]? in
                    guard case .unavailable? = error as? RedisError else { throw error }
                    return nil  // the node refused: this share was never sent
                }
                .map { (indices, $0) }
        }
        let eventLoop = futures.first?.eventLoop ?? eventLoopGroup.next()
        EventLoopFuture.whenAllSucceed(futures, on: eventLoop).whenComplete { result in
            switch result {
            case .failure(let error):
                cluster.requestRefresh()
                completion(.failure((error as? RedisError) ?? .connectionLost))
            case .success(let parts):
                var replies = [RESPValue](repeating: .null, count: commands.count)
                var unsent = Set<Int>()
                for (indices, batchReplies) in parts {
                    guard let batchReplies else {
                        unsent.formUnion(indices)
                        continue
                    }
                    for (index, reply) in zip(indices, batchReplies) { replies[index] = reply }
                }
                guard !unsent.isEmpty || replies.contains(where: Self.needsRouting) else {
                    completion(.success(replies))
                    return
                }
                if !unsent.isEmpty { cluster.requestRefresh() }
                // A slot moved under these commands, or its node refused them (failing over): follow them one by one
                // (their order is no longer kept), each share that was answered staying answered.
                Task {
                    do {
                        for index in replies.indices where unsent.contains(index) || Self.needsRouting(replies[index]) {
                            replies[index] = try await self.clusterSend(commands[index], on: cluster, timeout: timeout, orderKey: orderKey)
                        }
                        completion(.success(replies))
                    } catch {
                        completion(.failure((error as? RedisError) ?? .connectionLost))
                    }
                }
            }
        }
    }

    /// Script calls in cluster mode: pipelined per node; NOSCRIPT answers are loaded and run again on the node that
    /// gave them.
    func clusterRun(_ calls: [RedisScriptCall], on cluster: RedisClusterRouter) async throws -> [RESPValue] {
        let commands = calls.map { $0.script.evalsha(keys: $0.keys, arguments: $0.arguments) }
        var replies = try await clusterPipeline(commands, on: cluster, timeout: nil)
        for index in replies.indices where replies[index].errorMessage?.hasPrefix("NOSCRIPT") == true {
            replies[index] = try await clusterSend(commands[index], on: cluster, timeout: nil, script: calls[index].script)
        }
        return replies
    }

    /// The cluster's slot map as this client knows it (reading it first if need be). Cluster mode only.
    public func topology() async throws -> RedisClusterTopology {
        guard let cluster else { throw RedisError.protocolError("not a Redis Cluster client") }
        return try await cluster.topology()
    }

    /// One command to every primary at once (the replies of nodes that answered, with their addresses): for
    /// node-wide commands such as `INFO`. Cluster mode only; ``RedisClient/sendToEveryPrimary(_:timeout:)`` is the
    /// public entry.
    func clusterSendToEveryPrimary(
        _ command: RedisCommand, on cluster: RedisClusterRouter, timeout: Duration?
    ) async throws -> [(node: String, reply: RESPValue)] {
        let topology = try await cluster.topology()
        let deadline = NIODeadline.now() + (timeout.map(TimeAmount.init) ?? configuration.commandTimeout)
        return try await withThrowingTaskGroup(of: (String, RESPValue)?.self) { group in
            for node in topology.primaries {
                group.addTask {
                    guard let reply = try? await self.send([command], to: node, on: cluster, deadline: deadline, name: command.name).first else {
                        return nil
                    }
                    return (node.description, reply)
                }
            }
            var replies: [(node: String, reply: RESPValue)] = []
            for try await case let (node, reply)? in group { replies.append((node, reply)) }
            return replies.sorted { $0.node < $1.node }
        }
    }

    /// Whether every slot is served and every primary answers PING, within the bounded wait.
    func clusterHealth(on cluster: RedisClusterRouter, timeout: Duration?) async throws {
        // The map in hand (kept current by the periodic refresh, MOVED and failed sends), not a new read per probe.
        let topology = try await cluster.topology()
        guard topology.servedSlots == RedisHashSlot.count else {
            cluster.requestRefresh()
            throw RedisError.unavailable("the Redis Cluster serves \(topology.servedSlots) of \(RedisHashSlot.count) slots")
        }
        let deadline = NIODeadline.now() + (timeout.map(TimeAmount.init) ?? configuration.commandTimeout)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in topology.primaries {
                group.addTask {
                    let reply = try await self.send([RedisCommand("PING")], to: node, on: cluster, deadline: deadline, name: "PING")[0]
                    if let message = reply.errorMessage { throw RedisError.server("\(node): \(message)") }
                }
            }
            try await group.waitForAll()
        }
    }

    // MARK: - Helpers

    /// Commands grouped by the node that serves them, each group in the caller's order.
    private func route(_ commands: [RedisCommand], on cluster: RedisClusterRouter, orderKey: String?) async throws -> [(RedisClusterTopology.Endpoint, [Int])] {
        let topology = try await cluster.topology()
        do {
            return try Self.route(commands, by: topology, orderKey: orderKey)
        } catch RedisError.unavailable(let reason) {
            cluster.requestRefresh()  // a slot without a primary: the map is stale, or the cluster is failing over
            throw RedisError.unavailable(reason)
        }
    }

    private static func route(
        _ commands: [RedisCommand], by topology: RedisClusterTopology, orderKey: String?
    ) throws -> [(RedisClusterTopology.Endpoint, [Int])] {
        var order: [RedisClusterTopology.Endpoint] = []
        var groups: [RedisClusterTopology.Endpoint: [Int]] = [:]
        for (index, command) in commands.enumerated() {
            let node = try RedisClusterRouter.node(forSlot: try command.slot(), orderKey: orderKey, in: topology)
            if groups[node] == nil { order.append(node) }
            groups[node, default: []].append(index)
        }
        return order.map { ($0, groups[$0]!) }
    }

    /// One batch to one node, timed into the metrics by node.
    private func send(
        _ batch: [RedisCommand], to node: RedisClusterTopology.Endpoint, on cluster: RedisClusterRouter, deadline: NIODeadline, name: String
    ) async throws -> [RESPValue] {
        let start = ContinuousClock.now
        let remaining = deadline - .now()
        guard remaining > .zero else { throw RedisError.timeout }
        do {
            let replies = try await cluster.connection(to: node).send(batch: batch, timeout: remaining).get()
            RedisMetrics.record(name, node: node.description, since: start, reply: replies.first(where: { $0.errorMessage != nil }) ?? .null)
            return replies
        } catch {
            let error = (error as? RedisError) ?? RedisError.connectionLost
            RedisMetrics.record(name, node: node.description, since: start, error: error)
            cluster.requestRefresh()
            throw error
        }
    }

    /// Whether a reply asks the client to go elsewhere or try again.
    private static func needsRouting(_ reply: RESPValue) -> Bool {
        guard let message = reply.errorMessage else { return false }
        return RedisClusterError(errorReply: message) != nil
    }
}
