import Foundation
import NIOCore
@testable import PresenceCore
@testable import PresenceRedis
import Redis
import Testing
import TestSupport

/// Each present member's key `room:{id}:presence:<user>` against a real `redis-server`: its native TTL ends exactly at
/// the member's expiry in `room:{id}:members` (same script, same `TIME`), heartbeats push it back, it expires on its
/// own when abandoned, and it goes with the member however they go (leave, switch, last socket, sweeper, private-room
/// leave, room deletion, support close).
@Suite("Presence keys with native TTL")
struct PresenceKeysTests {
    func client() throws -> RedisClient {
        RedisClient(configuration: try SharedRedis.configuration())
    }

    func room(_ redis: RedisClient, _ type: Room.Kind = .public, members: [String] = []) async throws -> String {
        let id = "pk-" + UUID().uuidString.prefix(8).lowercased()
        _ = try await RedisRoomStore(redis: redis).create(id: id, name: id, type: type, createdBy: "alice", members: members)
        return id
    }

    func exists(_ redis: RedisClient, _ room: String, _ user: String) async throws -> Bool {
        try await redis.send(RedisCommand("EXISTS", RedisKeys.roomPresence(room, user))).int == 1
    }

    func pttl(_ redis: RedisClient, _ room: String, _ user: String) async throws -> Int {
        try #require(try await redis.send(RedisCommand("PTTL", RedisKeys.roomPresence(room, user))).int)
    }

    /// When the key expires (epoch ms, `PEXPIRETIME`), and the member's score in `:members`.
    func deadline(_ redis: RedisClient, _ room: String, _ user: String) async throws -> (key: Int, score: Int?) {
        let key = try #require(try await redis.send(RedisCommand("PEXPIRETIME", RedisKeys.roomPresence(room, user))).int)
        let score = try await redis.send(RedisCommand("ZSCORE", RedisKeys.roomMembers(room), user)).string.flatMap { Int($0) }
        return (key, score)
    }

    @Test func aJoinSetsTheKeyARefreshPushesItBackALeaveDeletesIt() async throws {
        let redis = try client()
        let presence = RedisPresenceStore(redis: redis)
        let id = try await room(redis)
        let joined = try await presence.join(room: id, user: "alice", ttl: .seconds(10), state: nil)
        #expect(try await redis.send(RedisCommand("GET", RedisKeys.roomPresence(id, "alice"))).string == "1")
        let afterJoin = try await pttl(redis, id, "alice")
        #expect(afterJoin > 0 && afterJoin <= 10_000, "PTTL within the ttl: \(afterJoin)")
        var at = try await deadline(redis, id, "alice")
        #expect(at.key == Int(joined.member.expiresAt) && at.score == at.key, "the key expires at the member's expiry")

        let refreshed = try #require(try await presence.refresh(room: id, user: "alice", ttl: .seconds(60), state: nil))
        let afterRefresh = try await pttl(redis, id, "alice")
        #expect(afterRefresh > 10_000 && afterRefresh <= 60_000, "pushed back: \(afterJoin) -> \(afterRefresh)")
        at = try await deadline(redis, id, "alice")
        #expect(at.key == Int(refreshed.member.expiresAt) && at.score == at.key)
        // A join of someone present refreshes too.
        try await Task.sleep(for: .milliseconds(20))
        let again = try await presence.join(room: id, user: "alice", ttl: .seconds(60), state: nil)
        let againAt = try await deadline(redis, id, "alice")
        #expect(!again.isNew && againAt.key == Int(again.member.expiresAt))

        let left = try await presence.leave(room: id, user: "alice")
        #expect(left.wasPresent)
        #expect(try await exists(redis, id, "alice") == false)
        // Refreshing someone absent writes no key.
        #expect(try await presence.refresh(room: id, user: "alice", ttl: .seconds(60), state: nil) == nil)
        #expect(try await exists(redis, id, "alice") == false)
        await redis.close()
    }

    @Test func aSwitchMovesTheKeyAndTheLastSocketTakesIt() async throws {
        let redis = try client()
        let presence = RedisPresenceStore(redis: redis)
        let a = try await room(redis), b = try await room(redis)
        let user = "u" + UUID().uuidString.prefix(6).lowercased()
        _ = try await presence.switchRooms(user: user, previous: nil, next: a, ttl: .seconds(30), nextIsPublic: true, limit: nil)
        #expect(try await exists(redis, a, user))
        let moved = try await presence.switchRooms(user: user, previous: a, next: b, ttl: .seconds(30), nextIsPublic: true, limit: nil)
        let join = try #require(try moved.joined?.get())
        #expect(try await exists(redis, a, user) == false)
        let bAt = try await deadline(redis, b, user)
        #expect(bAt.key == Int(join.member.expiresAt))

        // Presence channels: two sockets, a heartbeat of the sockets pushes the key back, the last one out deletes it.
        let c = try await room(redis)
        _ = try await presence.attachSocket("1.1", user: user, room: c, openingChannel: nil, ttl: .seconds(5))
        _ = try await presence.attachSocket("1.2", user: user, room: c, openingChannel: nil, ttl: .seconds(5))
        let before = try await pttl(redis, c, user)
        #expect(before > 0 && before <= 5_000)
        #expect(try await presence.refreshSockets([SocketEntry(room: c, user: user, socket: "1.1")], ttl: .seconds(40)).isEmpty)
        #expect(try await pttl(redis, c, user) > 5_000)
        #expect(try await presence.detachSocket("1.1", user: user, room: c) == nil)
        #expect(try await exists(redis, c, user), "another socket is left")
        #expect(try await presence.detachSocket("1.2", user: user, room: c)?.wasPresent == true)
        #expect(try await exists(redis, c, user) == false)
        await redis.close()
    }

    @Test func anAbandonedKeyExpiresOnItsOwnAndTheSweeperStillClaimsTheMemberOnce() async throws {
        let redis = try client()
        let presence = RedisPresenceStore(redis: redis)
        let id = try await room(redis)
        _ = try await presence.join(room: id, user: "gone", ttl: .milliseconds(300), state: nil)
        _ = try await presence.join(room: id, user: "stays", ttl: .seconds(60), state: nil)
        // Its deadline is the member's expiry (no clock reading here, so a busy machine cannot make this fail).
        let deadline = try await redis.send(RedisCommand("PEXPIRETIME", RedisKeys.roomPresence(id, "gone"))).int
        let score = try await redis.send(RedisCommand("ZSCORE", RedisKeys.roomMembers(id), "gone")).string.flatMap { Int($0) }
        #expect(deadline == -2 || deadline == score)
        // Gone by itself, no sweeper involved (polled, with room for a slow machine).
        var gone = false
        for _ in 0..<200 where !gone {
            gone = try await exists(redis, id, "gone") == false
            if !gone { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(gone, "expired by itself, no sweeper involved")
        #expect(try await redis.send(RedisCommand("ZSCORE", RedisKeys.roomMembers(id), "gone")).string != nil)
        let claims = try await RedisExpiryStore(redis: redis).claimExpired(rooms: [id, id])
        #expect(claims.compactMap { $0 }.map(\.users) == [["gone"], []], "claimed exactly once")
        #expect(try await exists(redis, id, "stays"))
        await redis.close()
    }

    @Test func aPrivateRoomLeaveARoomDeletionAndASupportCloseRemoveTheKeys() async throws {
        let redis = try client()
        let presence = RedisPresenceStore(redis: redis)
        let rooms = RedisRoomStore(redis: redis)
        let ttl = Duration.seconds(60)
        let id = try await room(redis, .private, members: ["alice", "bob", "carol"])
        for user in ["alice", "bob", "carol"] { _ = try await presence.join(room: id, user: user, ttl: ttl, state: nil) }
        let leave = try #require(try await rooms.leavePrivate(id, user: "carol"))
        #expect(!leave.deleted && leave.wasPresent)
        #expect(try await exists(redis, id, "carol") == false)
        #expect(try await exists(redis, id, "alice"))
        #expect(try await exists(redis, id, "bob"))
        // bob leaves too: fewer than two remain, the room goes, and alice's key with it.
        #expect(try #require(try await rooms.leavePrivate(id, user: "bob")).deleted)
        #expect(try await exists(redis, id, "alice") == false)
        #expect(try await exists(redis, id, "bob") == false)

        // A room of more members than one DEL of room_delete.lua takes (500), some expired already.
        let big = try await room(redis)
        let users = (0..<1_200).map { "m\($0)" }
        _ = try await redis.run(users.map { presence.joinCall(room: big, user: $0, ttl: $0.hasSuffix("7") ? .milliseconds(50) : ttl, state: nil) })
        try await Task.sleep(for: .milliseconds(120))
        #expect(try await redis.send(RedisCommand("ZCARD", RedisKeys.roomMembers(big))).int == 1_200)
        #expect(try await rooms.delete(big) != nil)
        var left = 0
        for batch in stride(from: 0, to: users.count, by: 300) {
            var command = RedisCommand("EXISTS")
            for user in users[batch..<min(batch + 300, users.count)] { command.append(RedisKeys.roomPresence(big, user)) }
            left += try await redis.send(command).int ?? -1
        }
        #expect(left == 0, "every presence key went with the room")

        let ticket = "PK-" + UUID().uuidString.prefix(8)
        let support = "ticket_" + ticket
        try await redis.send(RedisCommand("HSET", RedisKeys.roomMeta(support), "id", support, "type", "support",
                                          "ticketId", ticket, "status", "open", "closed", "0", "createdAt", "1", "customer", "alice"))
        _ = try await presence.join(room: support, user: "alice", ttl: ttl, state: ["role": "customer", "typing": false])
        _ = try await presence.join(room: support, user: "bob", ttl: ttl, state: ["role": "agent", "typing": false])
        #expect(try await exists(redis, support, "alice"))
        #expect(try await exists(redis, support, "bob"))
        let closed = try await RedisSupportStore(redis: redis).close(room: support, by: "bob", deleteHistory: true, deleteSnapshot: true)
        #expect(closed.present.sorted() == ["alice", "bob"])
        #expect(try await exists(redis, support, "alice") == false)
        #expect(try await exists(redis, support, "bob") == false)
        await redis.close()
    }
}
