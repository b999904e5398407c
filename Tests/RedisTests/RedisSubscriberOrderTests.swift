import Foundation
import NIOCore
import Redis
import Testing
import TestSupport

/// The hub's pattern, hammered: many tasks join and leave one channel through an actor that subscribes with the first
/// holder and unsubscribes with the last. Whatever the interleaving, Redis ends subscribed exactly when someone holds
/// the channel, and a message published then is delivered.
@Suite("Subscribe and unsubscribe of one channel, hammered")
struct RedisSubscriberOrderTests {
    actor Holders {
        let subscriber: any RedisPubSub
        let channel: String
        var count = 0
        init(_ subscriber: any RedisPubSub, channel: String) {
            self.subscriber = subscriber
            self.channel = channel
        }

        func join() async {
            count += 1
            // Queued on the actor, before the await: the order Redis sees is the order decided here.
            if count == 1 { try? await subscriber.requestSubscribe([channel]).get() }
        }

        func leave() async {
            count -= 1
            if count == 0 { try? await subscriber.requestUnsubscribe([channel]).get() }
        }
    }

    func hammer(_ client: RedisClient, subscriber: any RedisPubSub, channel: String, endHeld: Bool) async throws {
        let holders = Holders(subscriber, channel: channel)
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<16 {
                group.addTask {
                    for round in 0..<60 {
                        await holders.join()
                        if round % 3 != task % 3 { await Task.yield() }
                        await holders.leave()
                    }
                }
            }
        }
        if endHeld { await holders.join() }
        // Every request reached Redis in order: let the last confirmation arrive, then look.
        try await subscriber.subscribe([])
        var deadline = ContinuousClock.now + .seconds(5)
        var count = -1
        while ContinuousClock.now < deadline {
            count = try await numsub(client, channel)
            if count == (endHeld ? 1 : 0) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(count == (endHeld ? 1 : 0), "subscribed in Redis exactly when held")
        // And stays so: no late command flips it.
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await numsub(client, channel) == (endHeld ? 1 : 0))
        if endHeld {
            var events = subscriber.events.makeAsyncIterator()
            deadline = ContinuousClock.now + .seconds(5)
            _ = try await client.publish("still here", to: channel)
            var delivered = false
            while !delivered, ContinuousClock.now < deadline, let event = await events.next() {
                if case .message(channel, let payload) = event, String(buffer: payload) == "still here" { delivered = true }
            }
            #expect(delivered)
        }
    }

    /// Subscribers of `channel`: `PUBSUB NUMSUB` on one Redis; on a cluster `PUBSUB SHARDNUMSUB`, asked of the
    /// primary of the channel's slot (the only node that knows its shard subscribers).
    func numsub(_ client: RedisClient, _ channel: String) async throws -> Int {
        guard client.isCluster else {
            return try await client.send(RedisCommand("PUBSUB", "NUMSUB", channel)).array?.last?.int ?? -1
        }
        let owner = try #require(try await client.topology().primary(forSlot: RedisHashSlot.slot(for: channel)))
        let node = RedisClient(configuration: try RedisConfiguration(url: "redis://\(owner.host):\(owner.port)"))
        let count = try await node.send(RedisCommand("PUBSUB", "SHARDNUMSUB", channel)).array?.last?.int ?? -1
        await node.close()
        return count
    }

    @Test(arguments: [true, false])
    func classicPubSubEndsAsTheHoldersDecided(endHeld: Bool) async throws {
        let client = RedisClient(configuration: try SharedRedis.configuration())
        let subscriber = client.makeSubscriber()
        try await hammer(client, subscriber: subscriber, channel: "hammer-\(UUID().uuidString.prefix(8))", endHeld: endHeld)
        await subscriber.close()
        await client.close()
    }
}
