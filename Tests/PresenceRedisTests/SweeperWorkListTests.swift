import Foundation
@testable import PresenceCore
@testable import PresenceRedis
import Redis
import Testing
import TestSupport

/// The sweeper's bucketed work list (`presence_register` / `presence_due` / `presence_sweep` / `presence_settle`)
/// against a real `redis-server`, with the interleavings a worker cannot arrange on purpose. Serialized: each test
/// leases every due room, its neighbours' too.
@Suite("Sweeper work list in Redis", .serialized)
struct SweeperWorkListTests {
    func client() throws -> RedisClient {
        var configuration = try SharedRedis.configuration()
        configuration.connectionCount = 1
        return RedisClient(configuration: configuration)
    }

    func publicRoom(_ redis: RedisClient) async throws -> String {
        let id = "sw-" + UUID().uuidString.prefix(8).lowercased()
        _ = try await RedisRoomStore(redis: redis).create(id: id, name: id, type: .public, createdBy: "system", members: [])
        return id
    }

    /// Leases due rooms until `room` is among them (other suites' rooms may be due too).
    func lease(_ store: RedisExpiryStore, _ room: String, lease: Duration = .seconds(5)) async throws -> DueRoom? {
        try await store.due(limit: 10_000, lease: lease).first { $0.room == room }
    }

    func score(_ redis: RedisClient, _ room: String) async throws -> Int64? {
        let bucket = RedisKeys.spreadBucket(of: room)
        return try await redis.send(RedisCommand("ZSCORE", RedisKeys.presenceRooms(bucket: bucket), room)).string.flatMap { Int64($0) }
    }

    @Test func aJoinThatRunsAfterAnEmptyClaimIsStillAnnounced() async throws {
        let redis = try client()
        let store = RedisExpiryStore(redis: redis)
        let presence = RedisPresenceStore(redis: redis)
        let room = try await publicRoom(redis)
        // A join registered its room (due at once here), then stalled before its script ran.
        _ = try await redis.run([RedisExpiryStore.registerCall(room: room, ttl: .zero)])
        let due = try #require(try await lease(store, room))
        let empty = try #require(try await store.claimExpired(rooms: [room])[0])
        #expect(empty.users.isEmpty && empty.nextExpiry == nil)
        // Now the stalled join runs, between the claim and the settle.
        _ = try await redis.run([presence.joinCall(room: room, user: "alice", ttl: .milliseconds(300), state: nil)])
        try await store.settle([(due, empty)], recheck: .milliseconds(100))
        // Not dropped: the registration is recent, so the room is checked again shortly.
        let planned = try #require(try await score(redis, room))
        #expect(planned == empty.claimedAt + 100)
        // Swept until alice's expiry is claimed: once.
        var announced: [String] = []
        for _ in 0..<100 where announced.isEmpty {
            try await Task.sleep(for: .milliseconds(100))
            guard let again = try await lease(store, room) else { continue }
            let claim = try #require(try await store.claimExpired(rooms: [room])[0])
            announced += claim.users
            try await store.settle([(again, claim)], recheck: .milliseconds(100))
        }
        #expect(announced == ["alice"])
        #expect(try await redis.send(RedisCommand("ZCARD", RedisKeys.roomMembers(room))).int == 0)
        let repeatClaim = try #require(try await store.claimExpired(rooms: [room])[0])
        #expect(repeatClaim.users.isEmpty)
    }

    @Test func anEmptyRoomIsDroppedOnlyLongAfterItsLastRegistration() async throws {
        let redis = try client()
        // A keep time long enough that the first settle surely falls inside it, even on a busy machine.
        let keep = Duration.seconds(3)
        let store = RedisExpiryStore(redis: redis, keepEmpty: keep)
        let room = try await publicRoom(redis)
        let registered = ContinuousClock.now
        _ = try await redis.run([RedisExpiryStore.registerCall(room: room, ttl: .zero)])
        let first = try #require(try await lease(store, room))
        let claim = try #require(try await store.claimExpired(rooms: [room])[0])
        try await store.settle([(first, claim)], recheck: .milliseconds(50))
        if ContinuousClock.now - registered < keep { #expect(try await score(redis, room) != nil) }
        try await Task.sleep(for: keep + .milliseconds(200))
        let second = try #require(try await lease(store, room))
        let later = try #require(try await store.claimExpired(rooms: [room])[0])
        try await store.settle([(second, later)], recheck: .milliseconds(50))
        #expect(try await score(redis, room) == nil)
        #expect(try await redis.send(RedisCommand("HEXISTS", RedisKeys.presenceRoomsTouched(bucket: RedisKeys.spreadBucket(of: room)), room)).int == 0)
    }

    @Test func aRoomWhosePassDiedIsTakenAgainWhenTheLeaseEnds() async throws {
        let redis = try client()
        let store = RedisExpiryStore(redis: redis)
        let room = try await publicRoom(redis)
        _ = try await redis.run([RedisExpiryStore.registerCall(room: room, ttl: .zero)])
        // A lease long enough that the next call surely falls inside it, even on a busy machine.
        let leased = ContinuousClock.now
        #expect(try await lease(store, room, lease: .seconds(3)) != nil)
        // Leased and never settled (the worker died): nobody else gets it during the lease ...
        let during = try await lease(store, room, lease: .seconds(3))
        if ContinuousClock.now - leased < .seconds(3) { #expect(during == nil) }
        // ... and a pass after it does.
        try await Task.sleep(for: .seconds(3))
        var retaken = during != nil
        let deadline = ContinuousClock.now + .seconds(10)
        while !retaken && ContinuousClock.now < deadline {
            retaken = try await lease(store, room, lease: .seconds(3)) != nil
            if !retaken { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(retaken)
    }

    @Test func aRegistrationNeverPostponesAnEarlierCheck() async throws {
        let redis = try client()
        let room = try await publicRoom(redis)
        // The reply: {the room's check time, Redis's clock now}.
        let early = try #require(try await redis.run([RedisExpiryStore.registerCall(room: room, ttl: .seconds(1))])[0].array?.first?.int)
        let late = try #require(try await redis.run([RedisExpiryStore.registerCall(room: room, ttl: .seconds(90))])[0].array?.first?.int)
        #expect(late == early)
    }

    @Test func theOldWorkListMovesIntoTheBuckets() async throws {
        let redis = try client()
        let room = try await publicRoom(redis)
        _ = try await redis.send(RedisCommand("ZADD", RedisKeys.legacyPresenceExpiries, "1", "\(room):alice", "2", "pch:presence-\(room):u:1"))
        let moved = try await RedisExpiryStore(redis: redis).migrateLegacyIndex()
        #expect(moved >= 2)
        #expect(try await redis.send(RedisCommand("EXISTS", RedisKeys.legacyPresenceExpiries)).int == 0)
        #expect(try await score(redis, room) != nil)
        #expect(try await score(redis, "pch:presence-\(room)") != nil)
    }
}
