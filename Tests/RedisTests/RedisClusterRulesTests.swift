import NIOCore
@testable import Redis
import Testing

/// Slots, topology replies and redirects, as plain values: no socket.
@Suite("Redis Cluster rules")
struct RedisClusterRulesTests {
    typealias Endpoint = RedisClusterTopology.Endpoint

    func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }

    @Test func slotsFollowRedisHashTagRules() {
        #expect(RedisHashSlot.slot(for: "123456789") == 0x31C3 % 16384)  // the CRC16/XMODEM check value
        #expect(RedisHashSlot.slot(for: "foo") == 12182)
        #expect(RedisHashSlot.slot(for: "") == 0)
        #expect(RedisHashSlot.slot(for: "{user1000}.following") == RedisHashSlot.slot(for: "{user1000}.followers"))
        #expect(RedisHashSlot.slot(for: "room:{general}:meta") == RedisHashSlot.slot(for: "general"))
        // Only the first tag counts; an empty tag hashes the whole key; nested braces hash from the first `{`.
        #expect(RedisHashSlot.slot(for: "foo{bar}{zap}") == RedisHashSlot.slot(for: "bar"))
        #expect(RedisHashSlot.slot(for: "foo{}{bar}") != RedisHashSlot.slot(for: "bar"))
        #expect(RedisHashSlot.slot(for: "foo{{bar}}zap") == RedisHashSlot.slot(for: "{bar"))
        #expect(RedisHashSlot.slot(for: "a{b") != RedisHashSlot.slot(for: "b"))
    }

    @Test func streamCommandsAreRoutedByTheirStreamKeys() {
        func keys(_ command: RedisCommand) -> [String] { command.keys.map { String(decoding: $0, as: UTF8.self) } }
        #expect(keys(RedisCommand("XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "STREAMS", "s{a}", "t{a}", ">", ">")) == ["s{a}", "t{a}"])
        #expect(keys(RedisCommand("XREAD", "COUNT", "1", "streams", "s", "0")) == ["s"])
        #expect(keys(RedisCommand("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")) == ["s"])
        #expect(keys(RedisCommand("XINFO", "STREAM", "s")) == ["s"])
        #expect(keys(RedisCommand("XAUTOCLAIM", "s", "g", "c", "0", "0-0")) == ["s"])
        #expect(keys(RedisCommand("XINFO", "HELP")).isEmpty)
    }

    @Test func topologyFromClusterShards() throws {
        func node(_ port: Int, _ role: String, health: String = "online", endpoint: String = "127.0.0.1", ip: String = "127.0.0.1") -> RESPValue {
            .array([bulk("id"), bulk("n\(port)"), bulk("port"), .integer(Int64(port)), bulk("ip"), bulk(ip),
                    bulk("endpoint"), bulk(endpoint), bulk("role"), bulk(role), bulk("replication-offset"), .integer(0),
                    bulk("health"), bulk(health)])
        }
        func shard(_ slots: [Int64], _ nodes: [RESPValue]) -> RESPValue {
            .array([bulk("slots"), .array(slots.map { .integer($0) }), bulk("nodes"), .array(nodes)])
        }
        let reply = RESPValue.array([
            shard([10923, 16383], [node(7003, "master"), node(7006, "replica")]),
            shard([0, 5460], [node(7001, "master", endpoint: "?", ip: ""), node(7004, "replica", health: "loading")]),
            shard([5461, 10922], [node(7002, "master", health: "fail"), node(7005, "replica")]),
            shard([], [node(7007, "master")]),  // a primary without slots serves nothing
        ])
        let topology = try RedisClusterTopology.parse(shards: reply, answeredBy: Endpoint(host: "10.0.0.9", port: 7001))
        #expect(topology.primaries == [
            Endpoint(host: "10.0.0.9", port: 7001), Endpoint(host: "127.0.0.1", port: 7002), Endpoint(host: "127.0.0.1", port: 7003),
        ])
        #expect(topology.primary(forSlot: 0)?.port == 7001)
        #expect(topology.primary(forSlot: 5461)?.port == 7002)
        #expect(topology.primary(forSlot: 16383)?.port == 7003)
        #expect(topology.shards[0].replicas.isEmpty, "a loading replica is not offered")
        #expect(topology.servedSlots == 16384 - 5462, "a failed primary's slots are not served")
        #expect(throws: RedisError.self) { try RedisClusterTopology.parse(shards: .array([.array([bulk("slots")])]), answeredBy: Endpoint(host: "h", port: 1)) }
    }

    @Test func topologyFromClusterSlotsAndMoves() throws {
        func entry(_ start: Int64, _ end: Int64, _ ports: [Int64]) -> RESPValue {
            .array([.integer(start), .integer(end)] + ports.map { .array([bulk(""), .integer($0), bulk("id\($0)")]) })
        }
        var topology = try RedisClusterTopology.parse(
            slots: .array([entry(0, 100, [7001, 7004]), entry(101, 199, [7002]), entry(200, 300, [7001]), entry(301, 16383, [7002])]),
            answeredBy: Endpoint(host: "h", port: 7001)
        )
        #expect(topology.primaries == [Endpoint(host: "h", port: 7001), Endpoint(host: "h", port: 7002)])
        #expect(topology.primary(forSlot: 250)?.port == 7001 && topology.primary(forSlot: 150)?.port == 7002)
        #expect(topology.shards[0].replicas == [Endpoint(host: "h", port: 7004)])
        #expect(topology.servedSlots == 16384)
        topology.assign(slot: 5, to: Endpoint(host: "h", port: 7009))
        #expect(topology.primary(forSlot: 5)?.port == 7009 && topology.primaries.count == 3)
        topology.assign(slot: 6, to: Endpoint(host: "h", port: 7002))
        #expect(topology.primary(forSlot: 6)?.port == 7002)
    }

    @Test func theLayoutMostNodesReportWins() {
        let a = Endpoint(host: "h", port: 1), b = Endpoint(host: "h", port: 2)
        let old = RedisClusterTopology(shards: [RedisClusterTopology.Shard(primary: a, slots: [0...16383])])
        let new = RedisClusterTopology(shards: [
            RedisClusterTopology.Shard(primary: a, slots: [0...8000]), RedisClusterTopology.Shard(primary: b, slots: [8001...16383]),
        ])
        let partial = RedisClusterTopology(shards: [RedisClusterTopology.Shard(primary: b, slots: [8001...16383])])
        #expect(RedisClusterTopology.choose([old, new, new]) == new)
        #expect(RedisClusterTopology.choose([partial, old]) == old, "a tie goes to the layout serving more slots")
        #expect(RedisClusterTopology.choose([]) == nil)
    }

    @Test func anAnswerStaleAboutANodesOwnDemotionIsLeftOut() {
        let a = Endpoint(host: "127.0.0.1", port: 7000), b = Endpoint(host: "127.0.0.1", port: 7001)
        let c = Endpoint(host: "127.0.0.1", port: 7002), aReplica = Endpoint(host: "127.0.0.1", port: 7003)
        func layout(_ owner: Endpoint) -> RedisClusterTopology {
            RedisClusterTopology(shards: [
                RedisClusterTopology.Shard(primary: owner, slots: [0...5000]), RedisClusterTopology.Shard(primary: b, slots: [5001...10000]),
                RedisClusterTopology.Shard(primary: c, slots: [10001...16383]),
            ])
        }
        let before = layout(a), after = layout(aReplica)
        // Just after a manual failover: the demoted primary and the promoted replica know; two others still gossip the old map.
        let answers = [(node: a, topology: after), (node: b, topology: before), (node: c, topology: before)]
        #expect(RedisClusterTopology.choose(answers.map(\.topology)) == before, "by votes alone, the stale map wins")
        #expect(RedisClusterTopology.choose(answersByNode: answers) == after)
        // Before anyone knows, and a node whose own answer serves nothing (just started, empty), change nothing.
        #expect(RedisClusterTopology.choose(answersByNode: [(a, before), (b, before), (c, after)]) == before)
        let empty = RedisClusterTopology(shards: [])
        #expect(RedisClusterTopology.choose(answersByNode: [(a, empty), (b, before), (c, before)]) == before)
    }

    @Test func redirectsAndRetriesAreRecognised() {
        #expect(RedisClusterError(errorReply: "MOVED 3999 127.0.0.1:6381") == .moved(slot: 3999, to: Endpoint(host: "127.0.0.1", port: 6381)))
        #expect(RedisClusterError(errorReply: "ASK 3999 [::1]:6381") == .ask(slot: 3999, to: Endpoint(host: "::1", port: 6381)))
        #expect(RedisClusterError(errorReply: "MOVED 12 :6390") == .moved(slot: 12, to: Endpoint(host: "", port: 6390)))
        #expect(RedisClusterError(errorReply: "TRYAGAIN Multiple keys request during rehashing of slot") == .tryAgain)
        #expect(RedisClusterError(errorReply: "CLUSTERDOWN The cluster is down") == .clusterDown)
        #expect(RedisClusterError(errorReply: "LOADING Redis is loading the dataset in memory") == .loading)
        #expect(RedisClusterError(errorReply: "MASTERDOWN Link with MASTER is down") == .masterDown)
        #expect(RedisClusterError(errorReply: "MOVED 16384 h:1") == nil)
        #expect(RedisClusterError(errorReply: "MOVED x h:1") == nil)
        #expect(RedisClusterError(errorReply: "ERR unknown command") == nil)
        #expect(RedisClusterError(errorReply: "CROSSSLOT Keys in request don't hash to the same slot") == nil)
    }

    @Test func callsGoAgainOnlyWhileTheDeadlineAllows() {
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var retry = RedisClusterRetry(deadline: start + .milliseconds(100))
        let node = Endpoint(host: "127.0.0.1", port: 7000)
        #expect(retry.next(after: .simpleString("OK"), from: node, now: start) == .done)
        #expect(retry.next(after: .error("ERR wrong"), from: node, now: start) == .done)
        #expect(retry.next(after: .error("MOVED 5 :7001"), from: node, now: start)
            == .redirect(to: Endpoint(host: "127.0.0.1", port: 7001), asking: false, movedSlot: 5))
        #expect(retry.next(after: .error("TRYAGAIN"), from: node, now: start) == .retry(after: .milliseconds(10), refreshTopology: false))
        // A call that was never sent (its node refused) goes again by a fresh map, backing off; not past the deadline.
        #expect(retry.nextAfterUnsent(now: start) == .retry(after: .milliseconds(20), refreshTopology: true))
        #expect(retry.nextAfterUnsent(now: start) == .retry(after: .milliseconds(40), refreshTopology: true))
        #expect(retry.nextAfterUnsent(now: start + .milliseconds(50)) == .done)
        #expect(retry.next(after: .error("CLUSTERDOWN"), from: node, now: start + .milliseconds(99)) == .done)
    }
}
