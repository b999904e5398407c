import Foundation
import NIOCore
@testable import PresenceCore
@testable import PresenceRedis
import Redis
import Testing
import TestSupport

/// A chat switch against a real `redis-server`: the room scripts publish the rooms' own events in the same step as
/// the change, each exactly once, and a switch whose room the sweeper's plan already covers skips registering it
/// (and registers again when the plan ran out).
@Suite("Presence switch in Redis")
struct SwitchInRedisTests {
    func client() throws -> RedisClient {
        var configuration = try SharedRedis.configuration()
        configuration.connectionCount = 1
        return RedisClient(configuration: configuration)
    }

    func publicRoom(_ redis: RedisClient, _ prefix: String) async throws -> String {
        let id = prefix + "-" + UUID().uuidString.prefix(8).lowercased()
        _ = try await RedisRoomStore(redis: redis).create(id: id, name: id, type: .public, createdBy: "system", members: [])
        return id
    }

    @Test func theRoomScriptsAnnounceEachChangeOnceInTheSameStep() async throws {
        let redis = try client()
        let presence = RedisPresenceStore(redis: redis)
        let a = try await publicRoom(redis, "swa"), b = try await publicRoom(redis, "swb")
        let user = "u" + UUID().uuidString.prefix(6).lowercased()
        let subscriber = redis.makeSubscriber()
        let channels = ["room-\(a)", "presence-room-\(a)", "room-\(b)", "presence-room-\(b)"]
        try await subscriber.subscribe(channels.map(RedisKeys.broadcastChannel))
        let collector = Task { [subscriber] in
            var seen: [(String, String, JSONValue, String)] = []
            for await event in subscriber.events {
                guard case .message(let channel, let payload) = event, let object = JSONValue.parse(payload.readableBytesView) else { continue }
                seen.append((channel, object["event"]?.string ?? "", object["data"] ?? .null, String(buffer: payload)))
                if seen.count == 6 { break }
            }
            return seen
        }

        let first = try await presence.switchRooms(user: user, previous: nil, next: a, ttl: .seconds(30), nextIsPublic: true, limit: nil)
        let firstJoin = try first.joined?.get()
        #expect(first.announced && firstJoin?.isNew == true)
        let second = try await presence.switchRooms(user: user, previous: a, next: b, ttl: .seconds(30), nextIsPublic: true, limit: nil)
        let secondJoin = try second.joined?.get()
        #expect(second.left?.wasPresent == true && secondJoin?.userCount == 1)
        let received = await collector.value
        // Nothing more: each change was announced once.
        try await Task.sleep(for: .milliseconds(300))
        await subscriber.close()
        var rest = 0
        for await event in subscriber.events { if case .message = event { rest += 1 } }
        #expect(rest == 0)
        // In order on each channel (the scripts of one pipeline may run out of order across rooms when one had to be
        // loaded first: another suite flushes the script cache).
        func on(_ channel: String) -> [(String, JSONValue)] {
            received.filter { $0.0 == RedisKeys.broadcastChannel(channel) }.map { ($0.1, $0.2) }
        }
        let joined: JSONValue = ["roomId": .string(a), "username": .string(user), "action": "joined", "userCount": 1]
        let left: JSONValue = ["roomId": .string(a), "username": .string(user), "action": "left", "userCount": 0]
        #expect(on("room-\(a)").map(\.0) == ["presence-update", "presence-update"])
        #expect(on("room-\(a)").map(\.1) == [joined, left])
        #expect(on("presence-room-\(a)").map(\.0) == ["pusher_internal:member_added", "pusher_internal:member_removed"])
        #expect(on("presence-room-\(a)").map(\.1) == [["user_id": .string(user), "user_info": ["username": .string(user)]], ["user_id": .string(user)]])
        #expect(on("room-\(b)").map(\.1) == [["roomId": .string(b), "username": .string(user), "action": "joined", "userCount": 1]])
        #expect(on("presence-room-\(b)").map(\.0) == ["pusher_internal:member_added"])
        // The very bytes the worker publishes for the same change (on a cluster it does): one event schema.
        func texts(_ channel: String) -> [String] { received.filter { $0.0 == RedisKeys.broadcastChannel(channel) }.map(\.3) }
        #expect(texts("room-\(a)") == [
            ChatService.presenceUpdate(room: a, type: .public, user: user, action: .joined, userCount: 1).payload,
            ChatService.presenceUpdate(room: a, type: .public, user: user, action: .left, userCount: 0).payload,
        ])
        #expect(texts("presence-room-\(b)") == [ChatService.memberEvent(channel: "presence-room-\(b)", user: user, action: .joined).payload])
        await redis.close()
    }

    @Test func theAnnouncementsCountIsPutInByStringFormatWithEveryOtherPercentKept() async throws {
        let redis = try client()
        for (room, user) in [("r%d-1", "a%%b"), ("general", "bob")] {
            let arguments = RedisPresenceStore.announcement(room: room, user: user, action: .left)
            #expect(arguments.count == 6)
            for (index, type) in [Room.Kind.public, .private].enumerated() {
                let event = ChatService.presenceUpdate(room: room, type: type, user: user, action: .left, userCount: 42)
                #expect(arguments[2 * index] == RedisKeys.broadcastChannel(event.channel))
                let text = try await redis.send(RedisCommand("EVAL", "return string.format(ARGV[1], 42)", "0", arguments[2 * index + 1]))
                #expect(text.string == event.payload)
            }
            #expect(arguments[5] == ChatService.memberEvent(channel: "presence-room-\(room)", user: user, action: .left).payload)
        }
        await redis.close()
    }

    @Test func aSwitchIntoARoomThatIsNotPublicIsRefusedWithoutJoining() async throws {
        let redis = try client()
        let presence = RedisPresenceStore(redis: redis)
        let id = "swp-" + UUID().uuidString.prefix(8).lowercased()
        _ = try await RedisRoomStore(redis: redis).create(id: id, name: "dm", type: .private, createdBy: "alice", members: ["alice", "bob"])
        let outcome = try await presence.switchRooms(user: "mallory", previous: nil, next: id, ttl: .seconds(30), nextIsPublic: true, limit: nil)
        #expect(throws: DomainError.self) { try outcome.joined?.get() }
        #expect(try await redis.send(RedisCommand("ZCARD", RedisKeys.roomMembers(id))).int == 0)
        await redis.close()
    }

    @Test func aCoveredRoomIsNotRegisteredAgainUntilItsPlanRunsOut() async throws {
        let redis = try client()
        let plans = SweeperPlans()
        let presence = RedisPresenceStore(redis: redis, plans: plans)
        let room = try await publicRoom(redis, "swr")
        let ttl = Duration.seconds(30)
        _ = try await presence.switchRooms(user: "alice", previous: nil, next: room, ttl: ttl, nextIsPublic: true, limit: nil)
        let planned = try #require(plans.plannedCheck(room: room, ttl: ttl))
        // bob's join is covered by the plan alice's registration made: nothing to register.
        let bucket = RedisKeys.spreadBucket(of: room)
        let touchedKey = RedisKeys.presenceRoomsTouched(bucket: bucket)
        let touched = try await redis.send(RedisCommand("HGET", touchedKey, room)).string
        try await Task.sleep(for: .milliseconds(20))
        _ = try await presence.switchRooms(user: "bob", previous: nil, next: room, ttl: ttl, nextIsPublic: true, limit: nil)
        #expect(try await redis.send(RedisCommand("HGET", touchedKey, room)).string == touched)
        #expect(plans.plannedCheck(room: room, ttl: ttl) == planned)
        // The worker's memory says the plan holds for 10 s more, but by Redis's clock the check is half a second away:
        // the join script refuses (STALE) and the switch registers, then joins.
        let time = try await redis.send(RedisCommand("TIME")).array ?? []
        let redisNow = Int64(time[0].string!)! * 1000 + Int64(time[1].string!)! / 1000
        plans.record(room: room, check: redisNow + 500, redisNow: redisNow - 10_000, sentAt: .now)
        let carol = try await presence.switchRooms(user: "carol", previous: nil, next: room, ttl: ttl, nextIsPublic: true, limit: nil)
        let carolJoin = try carol.joined?.get()
        #expect(carolJoin?.userCount == 3)
        #expect(try await redis.send(RedisCommand("HGET", touchedKey, room)).string != touched)
        #expect(plans.plannedCheck(room: room, ttl: ttl) == planned)  // the registration's answer, remembered again
        await redis.close()
    }

    @Test func theLimitIsCheckedWithTheUsersBookkeepingAndARefusedSwitchChangesNothing() async throws {
        let redis = try client()
        let presence = RedisPresenceStore(redis: redis)
        let a = try await publicRoom(redis, "swl"), b = try await publicRoom(redis, "swl")
        let user = "l" + UUID().uuidString.prefix(6).lowercased()
        let limiter = SlidingWindowLimiter(name: "presence", limit: 2, window: .seconds(60), storage: RedisRateLimitStorage(redis: redis))
        _ = try await presence.switchRooms(user: user, previous: nil, next: a, ttl: .seconds(30), nextIsPublic: true, limit: limiter)
        _ = try await presence.switchRooms(user: user, previous: a, next: b, ttl: .seconds(30), nextIsPublic: true, limit: limiter)
        #expect(try await presence.presentRooms(of: user) == [b])
        do {
            _ = try await presence.switchRooms(user: user, previous: b, next: a, ttl: .seconds(30), nextIsPublic: true, limit: limiter)
            Issue.record("a third switch within the window should be refused")
        } catch DomainError.rateLimited(let decision) {
            #expect(!decision.allowed && decision.remaining == 0 && decision.limit == 2 && decision.resetMilliseconds > 50_000)
        }
        // Nothing changed: still in b (the room's members and the user's own set), and the refusal was not counted.
        #expect(try await presence.presentRooms(of: user) == [b])
        #expect(try await redis.send(RedisCommand("ZSCORE", RedisKeys.roomMembers(b), user)).string != nil)
        #expect(try await redis.send(RedisCommand("ZSCORE", RedisKeys.roomMembers(a), user)).isNull)
        #expect(try await redis.send(RedisCommand("ZCARD", RedisKeys.rateLimit("presence", user))).int == 2)
        await redis.close()
    }

    @Test func theSwitchScriptAndTheLimiterShareOneLimiter() throws {
        // Both include lib/ratelimit.lua (no copy to keep equal): the composed texts hold the same function.
        let function = "local function ratelimit_sliding(key, limit, window, id, mode, cost)"
        for script in [Scripts.userSwitchLimited, Scripts.rateLimitSliding] {
            #expect(script.script.source.components(separatedBy: function).count == 2, "\(script.rawValue)")
            #expect(!script.script.source.split(separator: "\n").contains { $0.hasPrefix("--#include") }, "\(script.rawValue) composed")
        }
    }

    @Test func plansAreTrustedOnlyAheadOfTheirCheckAndWithinTheTTL() {
        let plans = SweeperPlans(capacity: 2)
        let now = ContinuousClock.now
        plans.record(room: "a", check: 10_000, redisNow: 5_000, sentAt: now)  // due 5 s from now
        #expect(plans.plannedCheck(room: "a", ttl: .seconds(10), now: now) == 10_000)
        #expect(plans.plannedCheck(room: "a", ttl: .seconds(4), now: now) == nil)  // a shorter expiry than the plan
        #expect(plans.plannedCheck(room: "a", ttl: .seconds(10), now: now + .milliseconds(4_100)) == nil)  // within 1 s
        #expect(plans.plannedCheck(room: "a", ttl: .seconds(10), now: now) == nil)  // and forgotten
        plans.record(room: "b", check: 1, redisNow: 0, sentAt: now)
        plans.record(room: "c", check: 60_000, redisNow: 0, sentAt: now)
        plans.record(room: "d", check: 60_000, redisNow: 0, sentAt: now)  // over capacity: starts over
        #expect(plans.plannedCheck(room: "c", ttl: .seconds(90), now: now) == nil)
        #expect(plans.plannedCheck(room: "d", ttl: .seconds(90), now: now) == 60_000)
    }
}
