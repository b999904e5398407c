import Foundation
@testable import PresenceCore
@testable import PresenceRedis
import Redis
import Testing
import TestSupport

/// Unattended tickets' episodes and index (`support_waiting.lua`, `lease_index.lua`) against a real
/// `redis-server`: the rule decided from the ticket's state, the notice flipped exactly once however many callers race,
/// `attended` with the wait, and the index's settle losing to a sync made during the lease. Serialized: each test leases
/// every due entry of the shared index, which would take the other's ticket.
@Suite("Support waiting episodes in Redis", .serialized)
struct RedisSupportWaitingTests {
    static let ttl = Duration.seconds(60)
    static let customer: JSONValue = ["role": "customer", "typing": false]
    static let agent: JSONValue = ["role": "agent", "typing": false]
    static let observer: JSONValue = ["role": "observer", "typing": false]

    func ticket(_ support: RedisSupportStore) async throws -> String {
        let ticket = "WT-" + UUID().uuidString.prefix(8)
        let room = "ticket_" + ticket
        _ = try await support.open(room: room, ticket: ticket, user: "cust", asCustomer: true, isAgent: false)
        return room
    }

    func score(_ redis: RedisClient, _ room: String) async throws -> String? {
        try await redis.send(RedisCommand("ZSCORE", RedisKeys.supportWaiting(of: room), room)).string
    }

    func leased(_ store: RedisSupportWaitingStore, _ room: String) async throws -> DueWaiting? {
        let deadline = ContinuousClock.now + .seconds(10)  // a deadline, not a count: the machine may be busy
        while ContinuousClock.now < deadline {
            if let due = try await store.due(limit: 1000, lease: .seconds(5)).first(where: { $0.room == room }) { return due }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    @Test func theNoticeFlipsOnceAndAnAgentEndsTheEpisodeWithItsWait() async throws {
        let redis = RedisClient(configuration: try SharedRedis.configuration())
        let presence = RedisPresenceStore(redis: redis)
        let support = RedisSupportStore(redis: redis)
        let store = RedisSupportWaitingStore(redis: redis)
        let room = try await ticket(support)
        let after = Duration.milliseconds(100)

        // An observer alone: no episode (the ticket is still registered: a hint the watcher drops).
        _ = try await presence.join(room: room, user: "obs", ttl: Self.ttl, state: Self.observer)
        #expect(try await store.sync(room: room, after: after).status == .none)
        #expect(try await score(redis, room) != nil)
        // The customer joins: an episode, due `after` later.
        _ = try await presence.join(room: room, user: "cust", ttl: Self.ttl, state: Self.customer)
        let started = try await store.sync(room: room, after: after)
        #expect(started.status == .started && started.customer == "cust" && !started.notified)
        #expect(try await score(redis, room) == String(started.since + after.milliseconds))
        #expect(try await store.sync(room: room, after: after).status == .waiting)
        #expect(try await store.queue().filter { $0.room == room }.map(\.answer.since) == [started.since])

        // Once due, many callers race: exactly one flips it.
        let due = try #require(try await leased(store, room))
        let answers = try await withThrowingTaskGroup(of: WaitingAnswer.Status.self) { group in
            for _ in 0..<8 { group.addTask { try await store.notify(due, after: after).status } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.filter { $0 == .notify }.count == 1 && answers.filter { $0 == .waiting }.count == 7)
        #expect(try await score(redis, room) == "inf")
        #expect(try await store.queue().first { $0.room == room }?.answer.notified == true)

        // An agent joins: attended, with the wait; the notified entry is dropped by the watcher's next look.
        _ = try await presence.join(room: room, user: "agent1", ttl: Self.ttl, state: Self.agent)
        let attended = try await store.sync(room: room, after: after)
        #expect(attended.status == .attended && attended.since == started.since && attended.notified)
        #expect(attended.waitMs >= after.milliseconds)
        #expect(try await redis.send(RedisCommand("EXISTS", RedisKeys.roomWaiting(room))).int == 0)
        #expect(try await store.queue().contains { $0.room == room } == false)
        let stale = try #require(try await leased(store, room))
        #expect(try await store.notify(stale, after: after).status == .none)
        #expect(try await score(redis, room) == nil)
    }

    @Test func aSyncDuringTheLeaseWinsAndACloseOrAnExpiryEndsTheEpisode() async throws {
        let redis = RedisClient(configuration: try SharedRedis.configuration())
        let presence = RedisPresenceStore(redis: redis)
        let support = RedisSupportStore(redis: redis)
        let store = RedisSupportWaitingStore(redis: redis)
        let room = try await ticket(support)
        let after = Duration.milliseconds(50)
        _ = try await presence.join(room: room, user: "cust", ttl: Self.ttl, state: Self.customer)
        _ = try await store.sync(room: room, after: after)
        let due = try #require(try await leased(store, room))
        // The agent comes and goes while the watcher holds the lease: the sync's new episode keeps its own time.
        _ = try await presence.join(room: room, user: "agent1", ttl: Self.ttl, state: Self.agent)
        #expect(try await store.sync(room: room, after: after).status == .attended)
        _ = try await presence.leave(room: room, user: "agent1")
        let second = try await store.sync(room: room, after: after)
        #expect(second.status == .started)
        try await Task.sleep(for: .milliseconds(60))
        let flipped = try await store.notify(due, after: after)
        #expect(flipped.status == .notify && flipped.since == second.since)
        // The settle lost to the sync's time (the entry was not the leased one): it is not set to +inf here.
        #expect(try await score(redis, room) == String(second.since + after.milliseconds))

        // A close ends it; a customer whose presence ran out is no longer waiting, before any sweep.
        _ = try await support.close(room: room, by: "agent1", deleteHistory: false, deleteSnapshot: false)
        #expect(try await store.sync(room: room, after: after).status == .ended)
        let other = try await ticket(support)
        _ = try await presence.join(room: other, user: "cust", ttl: Self.ttl, state: Self.customer)
        #expect(try await store.sync(room: other, after: .seconds(60)).status == .started)
        // The presence runs out (its score falls below Redis's clock; set directly rather than racing a short TTL on a
        // busy machine), and no sweep has claimed it yet.
        _ = try await redis.send(RedisCommand("ZADD", RedisKeys.roomMembers(other), "XX", "1", "cust"))
        #expect(try await store.queue().contains { $0.room == other } == false)
        #expect(try await store.notify(DueWaiting(room: other, leasedUntil: 0), after: .seconds(60)).status == .ended)
    }
}
