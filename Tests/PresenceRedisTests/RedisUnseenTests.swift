import Foundation
@testable import PresenceCore
@testable import PresenceRedis
import Redis
import Testing
import TestSupport

/// `message_unseen`'s notices (#32) against a real `redis-server`: `unseen_post.lua` keeps one pending notice per
/// member who has not seen the room (not the author, not a present member, not a subscribed one) and counts it up;
/// seeing the room drops it (a subscription, a presence join); the watcher's claim is exactly-once however many race;
/// the send is exactly-once across a claim taken over after its lease; the index settle does not lose a post that came
/// in during the lease. Serialized: each test leases every due room of the shared index.
@Suite("Unseen messages in Redis", .serialized)
struct RedisUnseenTests {
    static let ttl = Duration.seconds(60)
    static let receiver = WebhookTarget(url: "http://127.0.0.1:9/unseen-tests", events: [.messageUnseen])

    struct Fixture {
        let redis: RedisClient
        let store: RedisUnseenStore
        let presence: RedisPresenceStore
        let history: RedisMessageHistory
        let room: String
    }

    func fixture() async throws -> Fixture {
        let redis = RedisClient(configuration: try SharedRedis.configuration())
        var webhooks = WebhookSettings()
        webhooks.targets = [Self.receiver]
        let room = "un-" + UUID().uuidString.prefix(8).lowercased()
        _ = try await RedisRoomStore(redis: redis).create(id: room, name: room, type: .private, createdBy: "alice", members: ["alice", "bob", "carol", "dave"])
        return Fixture(
            redis: redis, store: RedisUnseenStore(redis: redis, webhooks: webhooks), presence: RedisPresenceStore(redis: redis),
            history: RedisMessageHistory(redis: redis, limit: 100), room: room
        )
    }

    func pending(_ f: Fixture) async throws -> [String: JSONValue] {
        let flat = try await f.redis.send(RedisCommand("HGETALL", RedisKeys.roomUnseen(f.room))).array ?? []
        var out: [String: JSONValue] = [:]
        for index in stride(from: 0, to: flat.count - 1, by: 2) {
            out[flat[index].string!] = JSONValue.parse(Array(flat[index + 1].string!.utf8))
        }
        return out
    }

    func outboxLength(_ f: Fixture) async throws -> Int {
        let bucket = RedisKeys.spreadBucket(of: "private-room-\(f.room)")
        let entries = try await f.redis.send(RedisCommand("XRANGE", RedisKeys.webhookOutbox(bucket: bucket, target: Self.receiver.id), "-", "+")).array ?? []
        return entries.filter { ($0.array?[1].array ?? []).contains { $0.string?.contains("\"room\":\"\(f.room)\"") == true } }.count
    }

    /// Leases the room from the index (waiting until it is due).
    func leased(_ f: Fixture) async throws -> LeasedRoom? {
        let deadline = ContinuousClock.now + .seconds(10)  // a deadline, not a count: the machine may be busy
        while ContinuousClock.now < deadline {
            if let due = try await f.store.due(limit: 1000, lease: .seconds(5)).first(where: { $0.room == f.room }) { return due }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    @Test func onePendingNoticePerMemberWhoHasNotSeenTheRoomCountedUpAndDroppedWhenSeen() async throws {
        let f = try await fixture()
        // carol is present, dave subscribed on some worker; bob neither; alice writes.
        _ = try await f.presence.join(room: f.room, user: "carol", ttl: Self.ttl, state: nil)
        #expect(try await f.store.watch([RoomWatch(room: f.room, user: "dave", socket: "s1")], ttl: Self.ttl) == 0)
        let first = try await f.history.append(room: f.room, username: "alice", content: "one", role: nil, isAI: false)
        #expect(try await f.store.posted(room: f.room, message: first, members: ["alice", "bob", "carol", "dave"], grace: .seconds(30)) == 1)
        let second = try await f.history.append(room: f.room, username: "alice", content: "two", role: nil, isAI: false)
        #expect(try await f.store.posted(room: f.room, message: second, members: ["alice", "bob", "carol", "dave"], grace: .seconds(30)) == 1)
        let entries = try await pending(f)
        #expect(Set(entries.keys) == ["bob"])
        let bob = try #require(entries["bob"])
        #expect(bob["id"]?.string == first.id && bob["lastId"]?.string == second.id && bob["count"]?.int == 2)
        #expect(bob["from"]?.string == "alice" && bob["at"]?.int.map(Int64.init) == first.timestamp)
        // The index holds the room, due about the grace from now.
        #expect(try await f.redis.send(RedisCommand("ZSCORE", RedisKeys.unseenDue(of: f.room), f.room)).string != nil)

        // dave's socket leaves; he is offline at the third message. Then he subscribes: his notice is dropped.
        try await f.store.unwatch([RoomWatch(room: f.room, user: "dave", socket: "s1")])
        let third = try await f.history.append(room: f.room, username: "alice", content: "three", role: nil, isAI: false)
        #expect(try await f.store.posted(room: f.room, message: third, members: ["bob", "dave"], grace: .seconds(30)) == 2)
        #expect(try await f.store.watch([RoomWatch(room: f.room, user: "dave", socket: "s2")], ttl: Self.ttl) == 1)
        // bob joins the room's presence: his is dropped by the join itself.
        _ = try await f.presence.join(room: f.room, user: "bob", ttl: Self.ttl, state: nil)
        #expect(try await pending(f).isEmpty)

        // A public room keeps no watches.
        let open = "unp-" + UUID().uuidString.prefix(8).lowercased()
        _ = try await RedisRoomStore(redis: f.redis).create(id: open, name: open, type: .public, createdBy: "alice", members: [])
        _ = try await f.store.watch([RoomWatch(room: open, user: "bob", socket: "s3")], ttl: Self.ttl)
        #expect(try await f.redis.send(RedisCommand("EXISTS", RedisKeys.roomWatchers(open))).int == 0)
    }

    @Test func aDueNoticeIsClaimedOnceAndWrittenToTheOutboxOnceEvenWhenItsClaimIsTakenOver() async throws {
        let f = try await fixture()
        let message = try await f.history.append(room: f.room, username: "alice", content: "hi", role: nil, isAI: false)
        _ = try await f.store.posted(room: f.room, message: message, members: ["bob", "carol"], grace: .milliseconds(50))
        // carol subscribes after the post and before the claim: hers is dropped at once.
        #expect(try await f.store.watch([RoomWatch(room: f.room, user: "carol", socket: "c1")], ttl: Self.ttl) == 1)
        let room = try #require(try await leased(f))

        // Eight racing claims: bob's notice goes to exactly one.
        let claims = try await withThrowingTaskGroup(of: UnseenClaim.self) { group in
            for _ in 0..<8 { group.addTask { try await f.store.claim(room, lease: .seconds(30)) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let notices = claims.flatMap(\.notices)
        #expect(notices.count == 1)
        let notice = try #require(notices.first)
        #expect(notice.user == "bob" && notice.messageID == message.id && notice.count == 1 && notice.from == "alice")
        #expect(notice.webhookEvent.json["name"]?.string == "message_unseen")
        #expect(notice.webhookEvent.channel == "private-room-\(f.room)")

        // The claimer writes it, then dies before `done`: after the lease another worker gets the same notice, and
        // its write is nothing.
        #expect(try await f.store.send(notice) == true)
        // Its lease runs out (set into the past here rather than waited for: a busy machine stretches short leases).
        let key = RedisKeys.roomUnseenSending(f.room)
        let claimed = try #require(try await f.redis.send(RedisCommand("HGET", key, "bob")).string)
        guard case .object(var entry)? = JSONValue.parse(Array(claimed.utf8)) else { Issue.record("not JSON: \(claimed)"); return }
        entry["lease"] = .number(1)
        _ = try await f.redis.send(RedisCommand("HSET", key, "bob", JSONValue.object(entry).serialized))
        let again = try await f.store.claim(room, lease: .seconds(5))
        #expect(again.notices == [notice])
        #expect(try await f.store.send(notice) == false)
        try await f.store.done(notice)
        #expect(try await outboxLength(f) == 1)
        #expect(try await f.redis.send(RedisCommand("EXISTS", RedisKeys.roomUnseenSending(f.room))).int == 0)
        try await f.store.settle(room, next: nil)
        #expect(try await f.redis.send(RedisCommand("ZSCORE", RedisKeys.unseenDue(of: f.room), f.room)).string == nil)
    }

    @Test func aPostDuringTheRoomsLeaseIsNotLostWhenTheWatcherSettles() async throws {
        let f = try await fixture()
        let first = try await f.history.append(room: f.room, username: "alice", content: "a", role: nil, isAI: false)
        _ = try await f.store.posted(room: f.room, message: first, members: ["bob"], grace: .milliseconds(30))
        let room = try #require(try await leased(f))
        let claim = try await f.store.claim(room, lease: .seconds(5))
        #expect(claim.notices.count == 1)
        for notice in claim.notices {
            _ = try await f.store.send(notice)
            try await f.store.done(notice)
        }
        // A post while the watcher holds the lease (its registration cannot lower the lease's later score here: the
        // grace is longer than the lease), then the watcher settles with what its claim saw once the send was done:
        // nothing left (drop). The settle's second look registers the new notice's time.
        let second = try await f.history.append(room: f.room, username: "alice", content: "b", role: nil, isAI: false)
        _ = try await f.store.posted(room: f.room, message: second, members: ["bob"], grace: .seconds(30))
        try await f.store.settle(room, next: nil)
        let score = try await f.redis.send(RedisCommand("ZSCORE", RedisKeys.unseenDue(of: f.room), f.room)).string.flatMap { Double($0) }
        let due = try #require(try await pending(f)["bob"]?["due"]?.int)
        #expect(score == Double(due))
    }
}
