import Foundation
import NIOCore
import Redis
import TestSupport
import Synchronization
import Testing

/// Every suite that starts a real 6-node Redis Cluster (3 primaries, 3 replicas), one at a time: six nodes each are
/// plenty for a 2-core machine.
@Suite("Redis Cluster (real nodes)", .serialized)
struct RedisClusterTests {}

extension RedisClusterTests {
/// Slots, topology and redirects against real nodes.
@Suite("Redis Cluster against real nodes")
struct Layout {
    @Test func slotsAgreeWithClusterKeyslotAndTopologyRoutesEveryKey() async throws {
        let cluster = try await RedisClusterServers.start()
        defer { cluster.stop() }
        let first = RedisClient(configuration: try RedisConfiguration(url: cluster.nodes[0].url))

        // Thousands of generated keys, with tags, empty tags, `{}` and nested or unbalanced braces.
        var generator = SystemRandomNumberGenerator()
        let pieces = ["{", "}", "{}", "room:", "{general}", ":", "a", "é", "{{x}}", "user", "}{", "🙂", "0"]
        var keys = ["", "{}", "{", "}", "{{}}", "a{}b", "{a}{b}", "{}{a}", "x{y", "x}y{z}"]
        for _ in 0..<3000 {
            keys.append((0..<Int.random(in: 1...6, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined())
        }
        let replies = try await first.pipeline(keys.map { RedisCommand("CLUSTER", "KEYSLOT", $0) })
        for (key, reply) in zip(keys, replies) {
            #expect(reply.int == RedisHashSlot.slot(for: key), "slot of \(key)")
        }
        await first.close()

        // Every node describes the same layout, by CLUSTER SHARDS and by CLUSTER SLOTS.
        var answers: [RedisClusterTopology] = []
        for node in cluster.nodes {
            let client = RedisClient(configuration: try RedisConfiguration(url: node.url))
            let endpoint = RedisClusterTopology.Endpoint(host: "127.0.0.1", port: node.port)
            let shards = try RedisClusterTopology.parse(shards: try await client.send(RedisCommand("CLUSTER", "SHARDS")), answeredBy: endpoint)
            let slots = try RedisClusterTopology.parse(slots: try await client.send(RedisCommand("CLUSTER", "SLOTS")), answeredBy: endpoint)
            #expect(shards == slots)
            answers.append(shards)
            await client.close()
        }
        let topology = try #require(RedisClusterTopology.choose(answers))
        #expect(answers.allSatisfy { $0 == topology })
        #expect(topology.primaries.count == 3 && topology.servedSlots == 16384)
        #expect(topology.shards.allSatisfy { $0.replicas.count <= 1 })

        // Each key written where the map says is accepted; written anywhere else it is MOVED to exactly there.
        var clients: [Int: RedisClient] = [:]
        for node in cluster.nodes { clients[node.port] = RedisClient(configuration: try RedisConfiguration(url: node.url)) }
        for index in 0..<300 {
            let key = "route:{k\(index)}:x"
            let owner = try #require(topology.primary(forSlot: RedisHashSlot.slot(for: key)))
            #expect(try await clients[owner.port]!.raw(RedisCommand("SET", key, "1")) == .simpleString("OK"))
            let other = try #require(topology.primaries.first { $0 != owner })
            let reply = try await clients[other.port]!.raw(RedisCommand("GET", key))
            #expect(RedisClusterError(errorReply: reply.errorMessage ?? "") == .moved(slot: RedisHashSlot.slot(for: key), to: owner))
        }
        for client in clients.values { await client.close() }
    }
}

/// The client in cluster mode against a real 6-node cluster: routing, pipelines, scripts, pub/sub, redirects.
@Suite("Redis client in cluster mode")
struct Client {
    func node(_ cluster: RedisClusterServers, port: Int) async throws -> RedisClient {
        RedisClient(configuration: try RedisConfiguration(url: "redis://127.0.0.1:\(port)"))
    }

    @Test func routesCommandsPipelinesAndScriptsByKeySlot() async throws {
        let cluster = try await RedisClusterServers.start()
        defer { cluster.stop() }
        let client = RedisClient(configuration: try RedisConfiguration(url: cluster.url))
        // Keys over every primary, one at a time and as one pipeline whose replies come back in order.
        for index in 0..<50 { try await client.set("k\(index)", to: "v\(index)") }
        let replies = try await client.pipeline((0..<50).map { RedisCommand("GET", "k\($0)") } + [RedisCommand("PING")])
        #expect(replies.dropLast().map(\.string) == (0..<50).map { "v\($0)" })
        #expect(replies.last == .simpleString("PONG"))
        // A call whose keys span slots is refused before it is sent, naming the keys.
        await #expect(throws: RedisError.crossSlot(["a", "b"])) { try await client.send(RedisCommand("DEL", "a", "b")) }
        #expect(try await client.send(RedisCommand("DEL", "{t}a", "{t}b")) == .integer(0))
        // Scripts go by KEYS[1]; a node that does not know a script gets it loaded.
        for node in cluster.nodes { try await cluster.cli(["-p", String(node.port), "script", "flush"]) }
        let script = RedisScript(name: "incr2", source: "redis.call('INCR', KEYS[1]); return redis.call('INCR', KEYS[2])")
        let calls = (0..<20).map { RedisScriptCall(script, keys: ["{s\($0)}:a", "{s\($0)}:b"], arguments: []) }
        #expect(try await client.run(calls) == Array(repeating: .integer(1), count: 20))
        #expect(try await client.run(calls) == Array(repeating: .integer(2), count: 20))
        await #expect(throws: RedisError.crossSlot(["x", "y"])) { try await client.run(script, keys: ["x", "y"]) }
        // Detached batches land too.
        let done = AsyncStream.makeStream(of: Result<[RESPValue], RedisError>.self)
        client.pipelineDetached((0..<30).map { RedisCommand("SET", "d\($0)", "1") }, orderKey: "o") { done.continuation.yield($0) }
        var iterator = done.stream.makeAsyncIterator()
        #expect(try await iterator.next()?.get() == Array(repeating: .simpleString("OK"), count: 30))
        try await client.checkHealth()
        await client.close()
    }

    @Test func shardedPubSubWaitsForItsRouteThenDelivers() async throws {
        let cluster = try await RedisClusterServers.start()
        defer { cluster.stop() }
        let client = RedisClient(configuration: try RedisConfiguration(url: cluster.url))
        let subscriber = client.makeSubscriber()
        // Before the client knows the slot map, a subscribe waits for its route at most the command timeout; the
        // channel stays wanted and is subscribed once the subscriber's routing runs.
        await #expect(throws: RedisError.self) { try await subscriber.subscribe(["news"]) }
        let routing = Task { await subscriber.run() }
        var events = subscriber.events.makeAsyncIterator()
        try await waitUntil { try await client.publish("hello", to: "news") == 1 }
        var event = await events.next()
        while event == .reconnected { event = await events.next() }  // the routing itself says messages may be missed
        #expect(event == .message(channel: "news", payload: ByteBuffer(string: "hello")))
        routing.cancel()
        await subscriber.close()
        await client.close()
    }

    @Test func followsMovedAfterAFailoverAndAskDuringAMigration() async throws {
        let cluster = try await RedisClusterServers.start()
        defer { cluster.stop() }
        let client = RedisClient(configuration: try RedisConfiguration(url: cluster.url))
        let key = "moving:{m}"
        try await client.set(key, to: "before")
        let slot = RedisHashSlot.slot(for: key)
        let owner = try #require(try await client.topology().primary(forSlot: slot))

        // MOVED: a replica of the owner takes over (CLUSTER FAILOVER); the client still holds the old map.
        let replica = try await replicaOf(owner, in: cluster)
        try await cluster.cli(["-p", String(replica.port), "cluster", "failover"])
        try await waitUntil { (try? await cluster.cli(["-p", String(replica.port), "role"]))?.hasPrefix("master") == true }
        // A manual failover pauses only writes on the old owner, and it keeps serving reads until it hears of the new
        // configuration, so the read below would get its answer without a MOVED: wait until it has stepped down.
        try await waitUntil { (try? await cluster.cli(["-p", String(owner.port), "role"]))?.hasPrefix("slave") == true }
        try await cluster.waitUntilOK()
        #expect(try await client.getString(key) == "before")
        #expect(try await client.topology().primary(forSlot: slot) == replica, "MOVED taught the map the new owner")

        // ASK: the slot migrates by hand to another primary; the key has already moved, the slot not yet.
        let topology = try await client.topology()
        let target = try #require(topology.primaries.first { $0 != replica })
        let sourceID = try await cluster.cli(["-p", String(replica.port), "cluster", "myid"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let targetID = try await cluster.cli(["-p", String(target.port), "cluster", "myid"]).trimmingCharacters(in: .whitespacesAndNewlines)
        try await cluster.cli(["-p", String(target.port), "cluster", "setslot", String(slot), "importing", sourceID])
        try await cluster.cli(["-p", String(replica.port), "cluster", "setslot", String(slot), "migrating", targetID])
        try await cluster.cli(["-p", String(replica.port), "migrate", "127.0.0.1", String(target.port), key, "0", "5000"])
        #expect(try await client.getString(key) == "before", "ASK led to the target, with ASKING")
        #expect(try await client.topology().primary(forSlot: slot) == replica, "ASK does not change the map")
        for node in cluster.nodes {
            try await cluster.cli(["-p", String(node.port), "cluster", "setslot", String(slot), "node", targetID])
        }
        try await client.set(key, to: "after")
        #expect(try await client.getString(key) == "after")
        #expect(try await client.topology().primary(forSlot: slot) == target)
        await client.close()
    }

    /// Messages a test's collector task received, as "channel payload".
    final class Received: Sendable {
        private let messages = Mutex<Set<String>>([])
        func insert(_ message: String) { messages.withLock { _ = $0.insert(message) } }
        func contains(_ message: String) -> Bool { messages.withLock { $0.contains(message) } }
        var count: Int { messages.withLock { $0.count } }
    }

    /// A replica of `primary`, once the cluster lists one (replicas attach shortly after the cluster is created).
    func replicaOf(_ primary: RedisClusterTopology.Endpoint, in cluster: RedisClusterServers) async throws -> RedisClusterTopology.Endpoint {
        let id = try await cluster.cli(["-p", String(primary.port), "cluster", "myid"]).trimmingCharacters(in: .whitespacesAndNewlines)
        var port: Int?
        try await waitUntil {
            let nodes = try await cluster.cli(["-p", String(primary.port), "cluster", "nodes"])
            for line in nodes.split(separator: "\n") {
                let fields = line.split(separator: " ").map(String.init)
                guard fields.count > 3, fields[2].contains("slave"), fields[3] == id else { continue }
                let address = fields[1].split(separator: "@")[0]
                port = address.split(separator: ":").last.flatMap { Int(String($0)) }
            }
            return port != nil
        }
        return RedisClusterTopology.Endpoint(host: "127.0.0.1", port: port!)
    }

    @Test func shardedPubSubFollowsItsChannelsThroughAMigrationAndAFailover() async throws {
        let cluster = try await RedisClusterServers.start()
        defer { cluster.stop() }
        let client = RedisClient(configuration: try RedisConfiguration(url: cluster.url))
        let subscriber = client.makeSubscriber(healthCheckInterval: .milliseconds(200))
        #expect(subscriber is RedisShardedSubscriber)
        let router = Task { await subscriber.run() }
        // Every message delivered, as (channel, payload), collected by one consumer.
        let received = Received()
        let events = subscriber.events
        let collector = Task {
            for await event in events {
                if case .message(let channel, let payload) = event { received.insert("\(channel) \(String(buffer: payload))") }
            }
        }
        /// Publishes `payload` on `channel` until it is delivered (what is published while a channel moves is lost).
        func delivered(_ channel: String, _ payload: String) async throws -> Bool {
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                _ = try? await client.publish(payload, to: channel)
                try await Task.sleep(for: .milliseconds(200))
                if received.contains("\(channel) \(payload)") { return true }
            }
            return false
        }
        let channels = (0..<24).map { "news-\($0)" }
        try await subscriber.subscribe(channels)
        let topology = try await client.topology()
        // Each channel is subscribed on the primary of its slot, and only there.
        for primary in topology.primaries {
            let held = try await node(cluster, port: primary.port).send(RedisCommand("PUBSUB", "SHARDCHANNELS")).array?.compactMap(\.string) ?? []
            #expect(Set(held) == Set(channels.filter { topology.primary(forSlot: RedisHashSlot.slot(for: $0)) == primary }))
        }
        for channel in channels { #expect(try await client.publish("hi", to: channel) == 1) }
        try await waitUntil { received.count == channels.count }

        // The slot of one channel migrates to another primary: its node unsubscribes it (sunsubscribe), and the
        // subscriber follows it to the new owner.
        let moving = channels[0]
        let slot = RedisHashSlot.slot(for: moving)
        let source = try #require(topology.primary(forSlot: slot))
        let target = try #require(topology.primaries.first { $0 != source })
        let sourceID = try await cluster.cli(["-p", String(source.port), "cluster", "myid"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let targetID = try await cluster.cli(["-p", String(target.port), "cluster", "myid"]).trimmingCharacters(in: .whitespacesAndNewlines)
        try await cluster.cli(["-p", String(target.port), "cluster", "setslot", String(slot), "importing", sourceID])
        try await cluster.cli(["-p", String(source.port), "cluster", "setslot", String(slot), "migrating", targetID])
        for node in cluster.nodes { try await cluster.cli(["-p", String(node.port), "cluster", "setslot", String(slot), "node", targetID]) }
        #expect(try await delivered(moving, "moved"), "delivered from the new owner")
        #expect(try await node(cluster, port: target.port).send(RedisCommand("PUBSUB", "SHARDCHANNELS", moving)).array?.count == 1)

        // A primary's replica takes over (CLUSTER FAILOVER): the channels of its slots follow to the promoted node.
        let other = try #require(channels.first {
            let owner = topology.primary(forSlot: RedisHashSlot.slot(for: $0))
            return owner != source && owner != target
        })
        let oldOwner = try #require(topology.primary(forSlot: RedisHashSlot.slot(for: other)))
        let promoted = try await replicaOf(oldOwner, in: cluster)
        try await cluster.cli(["-p", String(promoted.port), "cluster", "failover"])
        try await waitUntil { (try? await cluster.cli(["-p", String(promoted.port), "role"]))?.hasPrefix("master") == true }
        #expect(try await delivered(other, "failed over"), "delivered after the failover")
        router.cancel()
        await subscriber.close()
        collector.cancel()

        // Subscribe and unsubscribe of one channel hammered from many tasks: sharded, it ends as the holders decided.
        for endHeld in [true, false] {
            let hammered = client.makeSubscriber(healthCheckInterval: .milliseconds(200))
            let routing = Task { await hammered.run() }
            try await RedisSubscriberOrderTests().hammer(client, subscriber: hammered, channel: "hammer-\(endHeld)", endHeld: endHeld)
            routing.cancel()
            await hammered.close()
        }
        await client.close()
    }

    func waitUntil(
        seconds: Double = 30, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while try await !condition() {
            guard ContinuousClock.now < deadline else {
                throw TestHarnessError("condition at line \(sourceLocation.line) not met in \(seconds) s")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// Readiness in cluster mode follows the cluster: a primary that dies makes the client unhealthy until its replica
/// has taken over, and commands for its slots come back.
@Suite("Redis Cluster health")
struct Health {
    @Test func aDeadPrimaryIsUnhealthyUntilItsReplicaTakesOver() async throws {
        let cluster = try await RedisClusterServers.start()
        defer { cluster.stop() }
        let client = RedisClient(configuration: try RedisConfiguration(url: cluster.url))
        try await client.checkHealth()
        let key = "health:{h}"
        try await client.set(key, to: "kept")
        let owner = try #require(try await client.topology().primary(forSlot: RedisHashSlot.slot(for: key)))
        try await Task.sleep(for: .milliseconds(500))  // the replica has the write (replication is asynchronous)
        let victim = try #require(cluster.nodes.first { $0.port == owner.port })
        victim.kill9()
        await #expect(throws: RedisError.self) { try await client.checkHealth(timeout: .seconds(1)) }
        // cluster-node-timeout is 2 s: the replica is promoted within seconds.
        let deadline = ContinuousClock.now + .seconds(30)
        var healthy = false
        while ContinuousClock.now < deadline, !healthy {
            healthy = (try? await client.checkHealth(timeout: .seconds(1))) != nil
            if !healthy { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(healthy)
        #expect(try await client.getString(key) == "kept")
        #expect(try await client.topology().primary(forSlot: RedisHashSlot.slot(for: key)) != owner)
        await client.close()
    }
}
}
