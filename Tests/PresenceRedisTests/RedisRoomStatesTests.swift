import Foundation
import NIOCore
@testable import PresenceCore
@testable import PresenceRedis
import Redis
import Testing
import TestSupport

/// Members' states in `room:{id}:states` against a real `redis-server`: kept only while not `{}`, gone with the member
/// however they go (leave, refresh to `{}`, the sweeper, the room's deletion or close), and never read for someone
/// whose presence ran out.
@Suite("Member states in one hash per room")
struct RedisRoomStatesTests {
    static let ttl = Duration.seconds(60)
    static let agent: JSONValue = ["role": "agent", "typing": false]

    func state(_ redis: RedisClient, _ room: String, _ user: String) async throws -> String? {
        try await redis.send(RedisCommand("HGET", RedisKeys.roomStates(room), user)).string
    }

    @Test func aStateIsKeptOnlyWhileItIsNotEmptyAndGoesWithTheMember() async throws {
        let redis = RedisClient(configuration: try SharedRedis.configuration())
        let presence = RedisPresenceStore(redis: redis)
        let room = "st-" + UUID().uuidString.prefix(8).lowercased()
        _ = try await RedisRoomStore(redis: redis).create(id: room, name: room, type: .public, createdBy: "alice", members: [])
        _ = try await presence.join(room: room, user: "alice", ttl: Self.ttl, state: Self.agent)
        _ = try await presence.join(room: room, user: "bob", ttl: Self.ttl, state: nil)
        #expect(try await state(redis, room, "alice") == Self.agent.serialized)
        #expect(try await state(redis, room, "bob") == nil, "'{}' is not stored")
        // A heartbeat keeps the state; a join without one keeps it too; replacing it with {} removes the entry.
        let kept = try #require(try await presence.refresh(room: room, user: "alice", ttl: Self.ttl, state: nil))
        #expect(kept.member.state == Self.agent)
        let rejoined = try await presence.join(room: room, user: "alice", ttl: Self.ttl, state: nil)
        #expect(!rejoined.isNew && rejoined.member.state == Self.agent)
        #expect(try await presence.states(room: room, users: ["alice", "bob", "nobody"]) == [Self.agent, [:], [:]])
        #expect(try await presence.present(room: room, among: ["nobody", "bob", "alice"]) == ["bob", "alice"])
        let cleared = try #require(try await presence.refresh(room: room, user: "alice", ttl: Self.ttl, state: [:]))
        #expect(cleared.previousState == Self.agent && cleared.member.state == [:])
        #expect(try await redis.send(RedisCommand("EXISTS", RedisKeys.roomStates(room))) == .integer(0))
        // Leaving takes the state with it.
        _ = try await presence.refresh(room: room, user: "bob", ttl: Self.ttl, state: Self.agent)
        let left = try await presence.leave(room: room, user: "bob")
        #expect(left.wasPresent && left.state == Self.agent)
        #expect(try await state(redis, room, "bob") == nil)
        await redis.close()
    }

    @Test func anExpiredMembersStateIsNotCarriedIntoANewPresenceAndTheSweeperRemovesIt() async throws {
        let redis = RedisClient(configuration: try SharedRedis.configuration())
        let presence = RedisPresenceStore(redis: redis)
        let room = "st-" + UUID().uuidString.prefix(8).lowercased()
        _ = try await RedisRoomStore(redis: redis).create(id: room, name: room, type: .public, createdBy: "alice", members: [])
        _ = try await presence.join(room: room, user: "carol", ttl: .milliseconds(50), state: Self.agent)
        _ = try await presence.join(room: room, user: "dave", ttl: .milliseconds(50), state: Self.agent)
        try await Task.sleep(for: .milliseconds(120))
        #expect(try await presence.refresh(room: room, user: "carol", ttl: Self.ttl, state: nil) == nil)
        #expect(try await presence.present(room: room, among: ["carol", "dave", "nobody"]).isEmpty, "expired is not present")
        let back = try await presence.join(room: room, user: "carol", ttl: Self.ttl, state: nil)
        #expect(back.isNew && back.member.state == [:] && back.previousState == [:])
        #expect(try await state(redis, room, "carol") == nil)
        // dave's entry stays until the sweeper claims him, exactly once, and it goes with him.
        #expect(try await state(redis, room, "dave") == Self.agent.serialized)
        let claim = try #require(try await RedisExpiryStore(redis: redis).claimExpired(rooms: [room]).first ?? nil)
        #expect(claim.users == ["dave"] && claim.userCount == 1)
        #expect(try await redis.send(RedisCommand("EXISTS", RedisKeys.roomStates(room))) == .integer(0))
        await redis.close()
    }

    @Test func aRoomsDeletionLeaveAndCloseRemoveTheStates() async throws {
        let redis = RedisClient(configuration: try SharedRedis.configuration())
        let presence = RedisPresenceStore(redis: redis)
        let rooms = RedisRoomStore(redis: redis)
        let id = "st-" + UUID().uuidString.prefix(8).lowercased()
        _ = try await rooms.create(id: id, name: id, type: .private, createdBy: "alice", members: ["alice", "bob", "carol"])
        for user in ["alice", "bob", "carol"] { _ = try await presence.join(room: id, user: user, ttl: Self.ttl, state: Self.agent) }
        let leave = try #require(try await rooms.leavePrivate(id, user: "carol"))
        #expect(!leave.deleted && leave.wasPresent && leave.userCount == 2)
        #expect(try await state(redis, id, "carol") == nil)
        #expect(try await state(redis, id, "alice") != nil)
        #expect(try await rooms.delete(id) != nil)
        let keys = RedisRoomStore.roomKeys(id)
        #expect(try await redis.pipeline(keys.map { RedisCommand("EXISTS", $0) }).allSatisfy { $0 == .integer(0) })

        let ticket = "ST-" + UUID().uuidString.prefix(8)
        let room = "ticket_" + ticket
        let support = RedisSupportStore(redis: redis)
        _ = try await support.open(room: room, ticket: ticket, user: "alice", asCustomer: true, isAgent: false)
        _ = try await presence.join(room: room, user: "alice", ttl: Self.ttl, state: ["role": "customer", "typing": false])
        _ = try await presence.join(room: room, user: "bob", ttl: Self.ttl, state: Self.agent)
        let closed = try await support.close(room: room, by: "bob", deleteHistory: true, deleteSnapshot: false)
        #expect(closed.present.sorted() == ["alice", "bob"])
        #expect(closed.snapshot.contains(#"{"role":"agent","username":"bob"}"#) || closed.snapshot.contains(#"{"username":"bob","role":"agent"}"#),
                "the snapshot's roles come from the states: \(closed.snapshot)")
        #expect(try await redis.send(RedisCommand("EXISTS", RedisKeys.roomStates(room))) == .integer(0))
        await redis.close()
    }
}
