import Foundation
@testable import PresenceCore
@testable import PresenceRedis
import Redis
import Testing
import TestSupport

/// A support ticket's attendance (`room:{ticket_<id>}:attendance`, `lib/attendance.lua`) against a real `redis-server`:
/// every script that ends a member's presence appends its interval in the same step, with the right reason and end,
/// only in support rooms; the list is capped; the close snapshot's agent times come from it; it goes with the history.
@Suite("Support attendance in Redis")
struct RedisAttendanceTests {
    static let ttl = Duration.seconds(60)
    static let customer: JSONValue = ["role": "customer", "typing": false]
    static let agent: JSONValue = ["role": "agent", "typing": false]
    static let observer: JSONValue = ["role": "observer", "typing": false]

    /// A new ticket room, opened by `customer` joining as customer.
    func ticket(_ support: RedisSupportStore, customer: String = "cust") async throws -> String {
        let ticket = "AT-" + UUID().uuidString.prefix(8)
        let room = "ticket_" + ticket
        _ = try await support.open(room: room, ticket: ticket, user: customer, asCustomer: true, isAgent: false)
        return room
    }

    /// The list as stored: each interval's JSON decoded.
    func stored(_ redis: RedisClient, _ room: String) async throws -> [AttendanceInterval] {
        let reply = try await redis.send(RedisCommand("LRANGE", RedisKeys.roomAttendance(room), "0", "-1"))
        return (reply.array ?? []).compactMap { $0.string.flatMap { JSONValue.parse(Array($0.utf8)) }.flatMap(AttendanceInterval.init(json:)) }
    }

    func items(_ value: JSONValue?) -> [JSONValue] {
        if case .array(let items)? = value { return items }
        return []
    }

    func joinedAt(_ redis: RedisClient, _ room: String, _ user: String) async throws -> Int64 {
        try #require(try await redis.send(RedisCommand("ZSCORE", RedisKeys.roomJoined(room), user)).string.flatMap { Int64($0) })
    }

    func expiresAt(_ redis: RedisClient, _ room: String, _ user: String) async throws -> Int64 {
        try #require(try await redis.send(RedisCommand("ZSCORE", RedisKeys.roomMembers(room), user)).string.flatMap { Int64($0) })
    }

    @Test func everyWayAPresenceEndsIsRecordedOnceWithItsReason() async throws {
        let redis = RedisClient(configuration: try SharedRedis.configuration())
        let presence = RedisPresenceStore(redis: redis)
        let support = RedisSupportStore(redis: redis)
        let room = try await ticket(support)
        let short = Duration.milliseconds(60)

        _ = try await presence.join(room: room, user: "cust", ttl: Self.ttl, state: Self.customer)
        _ = try await presence.join(room: room, user: "agent1", ttl: Self.ttl, state: Self.agent)
        let agentFrom = try await joinedAt(redis, room, "agent1")
        // A refresh and a join again while present end nothing.
        _ = try await presence.refresh(room: room, user: "agent1", ttl: Self.ttl, state: nil)
        _ = try await presence.join(room: room, user: "agent1", ttl: Self.ttl, state: Self.agent)
        #expect(try await stored(redis, room).isEmpty)
        // Left: ends now.
        #expect(try await presence.leave(room: room, user: "agent1").wasPresent)
        #expect(try await presence.leave(room: room, user: "agent1").wasPresent == false, "a second leave records nothing")
        var list = try await stored(redis, room)
        #expect(list.count == 1 && list[0].user == "agent1" && list[0].role == "agent" && list[0].reason == .left)
        #expect(list[0].from == agentFrom && list[0].to! >= agentFrom)

        // Expired and claimed by the sweeper: ends at its deadline, and only one claim records it.
        _ = try await presence.join(room: room, user: "obs", ttl: short, state: Self.observer)
        let obsFrom = try await joinedAt(redis, room, "obs")
        let obsDeadline = try await expiresAt(redis, room, "obs")
        try await Task.sleep(for: .milliseconds(150))
        let expiry = RedisExpiryStore(redis: redis)
        #expect(try await expiry.claimExpired(rooms: [room]).first??.users == ["obs"])
        #expect(try await expiry.claimExpired(rooms: [room]).first??.users == [])
        list = try await stored(redis, room)
        #expect(list.count == 2)
        #expect(list.last == AttendanceInterval(user: "obs", role: "observer", from: obsFrom, to: obsDeadline, reason: .expired))

        // Expired, not claimed yet, and joining again: the join ends the old presence (expired, at its deadline).
        _ = try await presence.join(room: room, user: "agent2", ttl: short, state: Self.agent)
        let firstFrom = try await joinedAt(redis, room, "agent2")
        let firstDeadline = try await expiresAt(redis, room, "agent2")
        try await Task.sleep(for: .milliseconds(150))
        #expect(try await presence.join(room: room, user: "agent2", ttl: Self.ttl, state: nil).isNew)
        list = try await stored(redis, room)
        #expect(list.count == 3)
        #expect(list.last == AttendanceInterval(user: "agent2", role: "agent", from: firstFrom, to: firstDeadline, reason: .expired))
        #expect(try await expiry.claimExpired(rooms: [room]).first??.users == [], "nothing left to claim")

        // Expired, not claimed yet, and leaving: expired too, not left.
        _ = try await presence.join(room: room, user: "late", ttl: short, state: nil)
        let lateDeadline = try await expiresAt(redis, room, "late")
        try await Task.sleep(for: .milliseconds(150))
        _ = try await presence.leave(room: room, user: "late")
        list = try await stored(redis, room)
        #expect(list.count == 4 && list.last?.reason == .expired && list.last?.to == lateDeadline && list.last?.role == "customer")

        // The last socket of a presence leaves: left (a guard: tickets are not presence channels today).
        _ = try await presence.attachSocket("1.1", user: "sock", room: room, openingChannel: nil, ttl: Self.ttl, state: Self.observer, maxMembers: nil)
        #expect(try await presence.detachSocket("1.1", user: "sock", room: room) != nil)
        list = try await stored(redis, room)
        #expect(list.count == 5 && list.last?.user == "sock" && list.last?.reason == .left && list.last?.role == "observer")

        // Present now: open intervals after the ended ones.
        let read = try await support.attendance(room: room)
        #expect(read.prefix(5) == list[...])
        #expect(read.dropFirst(5).map(\.user).sorted() == ["agent2", "cust"] && read.dropFirst(5).allSatisfy(\.isOpen))
        #expect(read.first { $0.user == "cust" && $0.isOpen }?.role == "customer")

        // The close: everyone present ends `closed` at closedAt, an expired entry not claimed yet `expired`.
        _ = try await presence.join(room: room, user: "gone", ttl: short, state: Self.agent)
        let goneDeadline = try await expiresAt(redis, room, "gone")
        try await Task.sleep(for: .milliseconds(150))
        let closed = try await support.close(room: room, by: "agent2", deleteHistory: false, deleteSnapshot: false)
        #expect(closed.present.sorted() == ["agent2", "cust"])
        let snapshot = try #require(JSONValue.parse(Array(closed.snapshot.utf8)))
        let closedAt = Int64(try #require(snapshot["closedAt"]?.int))
        list = try await stored(redis, room)
        #expect(list.count == 8)
        let ends = list.suffix(3)
        #expect(ends.contains(AttendanceInterval(user: "gone", role: "agent", from: ends.first { $0.user == "gone" }!.from, to: goneDeadline, reason: .expired)))
        #expect(ends.filter { $0.reason == .closed }.map(\.user).sorted() == ["agent2", "cust"])
        #expect(ends.filter { $0.reason == .closed }.allSatisfy { $0.to == closedAt })
        #expect(try await support.attendance(room: room) == list, "closed: nobody is present")
        #expect(try await redis.send(RedisCommand("EXISTS", RedisKeys.roomJoined(room))) == .integer(0))
        await redis.close()
    }

    @Test func theSnapshotTellsTheFirstAgentAndTheAgentTime() async throws {
        let redis = RedisClient(configuration: try SharedRedis.configuration())
        let presence = RedisPresenceStore(redis: redis)
        let support = RedisSupportStore(redis: redis)

        // No agent ever came: null and 0 (the snapshot's other fields as before).
        let lonely = try await ticket(support)
        _ = try await presence.join(room: lonely, user: "cust", ttl: Self.ttl, state: Self.customer)
        let none = try #require(JSONValue.parse(Array(try await support.close(room: lonely, by: "boss", deleteHistory: false, deleteSnapshot: false).snapshot.utf8)))
        #expect(none["firstAgentAfterMs"] == .null && none["agentPresentMs"]?.int == 0)
        #expect(items(none["members"]).first?["role"]?.string == "customer" && none["messageCount"]?.int == 0)

        // Overlapping agents count once; an observer not at all; an agent still present counts up to closedAt.
        let room = try await ticket(support)
        let createdAt = try #require(Int64(try await redis.send(RedisCommand("HGET", RedisKeys.roomMeta(room), "createdAt")).string ?? ""))
        _ = try await presence.join(room: room, user: "obs", ttl: Self.ttl, state: Self.observer)
        try await Task.sleep(for: .milliseconds(30))
        _ = try await presence.join(room: room, user: "a1", ttl: Self.ttl, state: Self.agent)
        try await Task.sleep(for: .milliseconds(30))
        _ = try await presence.join(room: room, user: "a2", ttl: Self.ttl, state: Self.agent)
        _ = try await presence.leave(room: room, user: "a1")
        _ = try await presence.leave(room: room, user: "a2")
        try await Task.sleep(for: .milliseconds(30))
        _ = try await presence.join(room: room, user: "a1", ttl: Self.ttl, state: Self.agent)
        try await Task.sleep(for: .milliseconds(30))
        let closed = try await support.close(room: room, by: "a1", deleteHistory: false, deleteSnapshot: false)
        let snapshot = try #require(JSONValue.parse(Array(closed.snapshot.utf8)))
        let list = try await stored(redis, room)
        #expect(list.map(\.user) == ["a1", "a2", "obs", "a1"] || list.map(\.user) == ["a1", "a2", "a1", "obs"])
        let a1 = try #require(list.first { $0.user == "a1" && $0.reason == .left })
        let a2 = try #require(list.first { $0.user == "a2" })
        let again = try #require(list.first { $0.user == "a1" && $0.reason == .closed })
        let closedAt = Int64(try #require(snapshot["closedAt"]?.int))
        #expect(a1.from < a2.from && a2.from <= a1.to! && again.to == closedAt)
        #expect(snapshot["firstAgentAfterMs"]?.int.map(Int64.init) == a1.from - createdAt)
        // a1 and a2 overlap: counted once, from a1's join to the later end; then a1's second stay up to closedAt.
        let expected = (max(a1.to!, a2.to!) - a1.from) + (again.to! - again.from)
        #expect(snapshot["agentPresentMs"]?.int.map(Int64.init) == expected)
        #expect(expected < (a1.to! - a1.from) + (a2.to! - a2.from) + (again.to! - again.from) || a2.from == a1.to!)
        #expect(items(snapshot["members"]).count == 2 && snapshot["closedBy"]?.string == "a1")
        await redis.close()
    }

    @Test func chatRoomsKeepNoAttendanceAndTheListIsCappedAndGoesWithTheHistory() async throws {
        let redis = RedisClient(configuration: try SharedRedis.configuration())
        // A chat room: the same scripts, nothing recorded, and no attendance key among the calls' keys (nor for a
        // presence channel's room).
        let chat = "at-" + UUID().uuidString.prefix(8).lowercased()
        let presence = RedisPresenceStore(redis: redis, attendanceLimit: 3)
        #expect(presence.leaveCall(room: chat, user: "alice").keys.count == 5)
        #expect(presence.joinCall(room: "pch:presence-x", user: "alice", ttl: Self.ttl, state: nil).keys.count == 6)
        #expect(presence.leaveCall(room: "ticket_T-1", user: "alice").keys.last == "room:{ticket_T-1}:attendance")
        _ = try await RedisRoomStore(redis: redis).create(id: chat, name: chat, type: .public, createdBy: "alice", members: [])
        _ = try await presence.join(room: chat, user: "alice", ttl: Self.ttl, state: Self.agent)
        _ = try await presence.leave(room: chat, user: "alice")
        _ = try await presence.join(room: chat, user: "bob", ttl: .milliseconds(30), state: nil)
        try await Task.sleep(for: .milliseconds(100))
        _ = try await RedisExpiryStore(redis: redis, attendanceLimit: 3).claimExpired(rooms: [chat])
        #expect(try await redis.send(RedisCommand("EXISTS", RedisKeys.roomAttendance(chat))) == .integer(0))

        // The cap keeps the newest.
        let support = RedisSupportStore(redis: redis, attendanceLimit: 3)
        let room = try await ticket(support)
        for i in 1...5 {
            _ = try await presence.join(room: room, user: "u\(i)", ttl: Self.ttl, state: nil)
            _ = try await presence.leave(room: room, user: "u\(i)")
        }
        #expect(try await stored(redis, room).map(\.user) == ["u3", "u4", "u5"])
        _ = try await presence.join(room: room, user: "u6", ttl: Self.ttl, state: nil)
        _ = try await support.close(room: room, by: "boss", deleteHistory: false, deleteSnapshot: false)
        #expect(try await stored(redis, room).map(\.user) == ["u4", "u5", "u6"])
        // Reopened and closed again with the history deleted: the attendance goes with it.
        _ = try await support.reopen(room: room)
        _ = try await presence.join(room: room, user: "u7", ttl: Self.ttl, state: nil)
        _ = try await support.close(room: room, by: "boss", deleteHistory: true, deleteSnapshot: false)
        #expect(try await redis.send(RedisCommand("EXISTS", RedisKeys.roomAttendance(room))) == .integer(0))
        #expect(try await support.attendance(room: room).isEmpty)
        await redis.close()
    }
}
