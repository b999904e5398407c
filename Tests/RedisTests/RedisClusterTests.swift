import NIOCore
import Redis
import TestSupport
import Testing

/// Slots, topology and redirects against a real 6-node Redis Cluster (3 primaries, 3 replicas).
@Suite("Redis Cluster against real nodes", .serialized)
struct RedisClusterTests {
    @Test func slotsAgreeWithClusterKeyslotAndTopologyRoutesEveryKey() async throws {
        let cluster = try RedisClusterServers.start()
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
