import Foundation
@testable import PresenceCore
@testable import PresenceApp
@testable import PresenceHTTP
@testable import PresenceRealtime
@testable import PresenceRedis
import Redis
import Testing

@Suite("Validation rules")
struct ValidationTests {
    @Test(arguments: ["abc", "Alice", "a-b-c", "a_b1", "z9z", String(repeating: "a", count: 30)])
    func validUsernames(name: String) {
        #expect(Validation.username(name) == name.lowercased())
    }

    @Test(arguments: ["ab", "1abc", "-abc", "abc-", "a--b", "a_-b", "ab c", "abé", "abc_", String(repeating: "a", count: 31), ""])
    func invalidUsernames(name: String) {
        #expect(Validation.username(name) == nil)
    }

    @Test func roomIDs() {
        #expect(Validation.isRoomID("general"))
        #expect(Validation.isRoomID("A1_b-c"))
        #expect(Validation.isRoomID(String(repeating: "x", count: 64)))
        #expect(!Validation.isRoomID(String(repeating: "x", count: 65)))
        #expect(!Validation.isRoomID("-x"))
        #expect(!Validation.isRoomID("_x"))
        #expect(!Validation.isRoomID("a b"))
        #expect(!Validation.isRoomID("a/b"))
        #expect(!Validation.isRoomID(""))
    }

    @Test func displayNamesRefuseControlAndBidiCharacters() {
        #expect(Validation.isDisplaySafe("Lobby – 2 ☕️ café"))
        for bad in ["a\u{0}b", "bell\u{7}", "new\nline", "tab\t", "del\u{7F}", "c1\u{85}", "\u{202E}txt.exe",
                    "\u{2066}iso", "lrm\u{200E}", "alm\u{061C}"] {
            #expect(!Validation.isDisplaySafe(bad), "\(bad.unicodeScalars.map(\.value))")
        }
    }

    @Test func supportRoomIDsAreRecognisedInAnyCase() {
        #expect(Validation.isSupportRoomID("ticket_X"))
        #expect(Validation.isSupportRoomID("TICKET_x"))
        #expect(!Validation.isSupportRoomID("ticket"))
        #expect(!Validation.isSupportRoomID("tickets-x"))
        #expect(!Validation.isNewChatRoomID("Ticket_1"))
    }

    @Test func accessChangesRoundTripAndMatchTheirHolders() {
        let change = AccessChange(user: "bob", channels: ["private-room-a", "presence-room-a"])
        guard case .object(let object)? = JSONValue.parse(Array(change.payload.utf8)) else {
            Issue.record("payload is not an object")
            return
        }
        #expect(AccessChange(control: object) == change)
        #expect(change.concerns(channel: "presence-room-a", holder: "bob"))
        #expect(!change.concerns(channel: "presence-room-a", holder: "alice"))
        #expect(!change.concerns(channel: "private-room-b", holder: "bob"))
        let agents = AccessChange(user: "ann", prefix: "private-room-ticket_")
        #expect(agents.concerns(channel: "private-room-ticket_T1", holder: "ann"))
        #expect(AccessChange(user: nil, channels: ["x"]).concerns(channel: "x", holder: "anyone"))
        #expect(AccessChange(control: ["recheck": ["user": "bob"]]) == nil)
        #expect(ChannelAccess.isGoverned("presence-room-general") && ChannelAccess.isGoverned("private-chats-bob"))
        #expect(!ChannelAccess.isGoverned("presence-lobby") && !ChannelAccess.isGoverned("private-orders"))
    }

    @Test func everyLuaScriptIsLoadedAndCheckedAtStartUp() throws {
        try Scripts.verify()
        let names = Set(Scripts.all.map(\.name))
        #expect(names.count == Scripts.all.count)
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Sources/PresenceRedis/Scripts").standardized
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".lua") }.map { String($0.dropLast(4)) }
        #expect(Set(files) == names, "a .lua file that Scripts does not load, or the other way round")
        #expect(Set(Scripts.allCases.map(\.rawValue)) == names)
        // Every library is included by some script, and no script is left with an include line once composed.
        let libraries = try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("lib").path)
            .filter { $0.hasSuffix(".lua") }.map { String($0.dropLast(4)) }
        for library in libraries {
            let sources = try files.map { try String(contentsOf: directory.appendingPathComponent("\($0).lua"), encoding: .utf8) }
            #expect(sources.contains { $0.contains("\n--#include \(library)\n") }, "lib/\(library).lua is included nowhere")
        }
        for script in Scripts.all {
            #expect(!script.source.split(separator: "\n").contains { $0.hasPrefix("--#include") }, "\(script.name)")
        }
    }

    @Test func legacySweeperEntriesSplitAfterTheRoomEvenWhenItHasAColon() {
        #expect(RedisExpiryStore.legacyRoom(ofEntry: "general:alice") == "general")
        #expect(RedisExpiryStore.legacyRoom(ofEntry: "ticket_T-1:bob") == "ticket_T-1")
        #expect(RedisExpiryStore.legacyRoom(ofEntry: "pch:presence-lobby:alice") == "pch:presence-lobby")
        #expect(RedisExpiryStore.legacyRoom(ofEntry: "pch:presence-lobby:user:1") == "pch:presence-lobby")
        #expect(RedisExpiryStore.legacyRoom(ofEntry: "nocolon") == nil)
    }

    @Test func sweeperBucketsSpreadOverTheSlotRange() {
        let width = 16384 / RedisKeys.spreadBuckets
        for bucket in 0..<RedisKeys.spreadBuckets {
            let key = RedisKeys.presenceRooms(bucket: bucket)
            #expect(RedisHashSlot.slot(for: key) / width == bucket, "\(key)")
            #expect(RedisHashSlot.slot(for: RedisKeys.presenceRoomsTouched(bucket: bucket)) == RedisHashSlot.slot(for: key))
        }
        #expect(Set(["general", "help", "random", "pch:presence-lobby"].map(RedisKeys.spreadBucket(of:))).count > 1)
        // The system tests and benchmarks compute the same names in Python (conftest.spread_key).
        #expect(RedisKeys.publicRooms(of: "general") == "rooms:public:{s13.1}")
    }

    @Test func messageIDs() {
        #expect(ChatMessage.isValidID("1704067320000-0"))
        #expect(!ChatMessage.isValidID("1704067320000"))
        #expect(!ChatMessage.isValidID("abc-1"))
        #expect(!ChatMessage.isValidID("1-"))
    }
}

@Suite("Origins and client addresses")
struct OriginAndAddressTests {
    @Test func originPatterns() {
        #expect(OriginPolicy.matches("http://localhost:3000", pattern: "http://localhost:*"))
        #expect(OriginPolicy.matches("http://127.0.0.1:8080", pattern: "http://127.0.0.1:*"))
        #expect(!OriginPolicy.matches("http://localhost.evil.com", pattern: "http://localhost:*"))
        #expect(!OriginPolicy.matches("https://localhost:3000", pattern: "http://localhost:*"))
        #expect(OriginPolicy.matches("https://anything.example", pattern: "*"))
        #expect(OriginPolicy.matches("https://os.ryo.lu", pattern: "https://os.ryo.lu"))
        #expect(!OriginPolicy.matches("https://os.ryo.lu.evil", pattern: "https://os.ryo.lu"))
    }

    @Test func forwardedForOnlyFromTrustedPeers() {
        let trusted = ["127.0.0.0/8", "::1", "10.0.0.0/8"].compactMap(ClientAddress.Block.init)
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: "203.0.113.9", trusted: trusted) == "203.0.113.9")
        #expect(ClientAddress.resolve(peer: "198.51.100.7", forwardedFor: "203.0.113.9", trusted: trusted) == "198.51.100.7")
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: "1.1.1.1, 203.0.113.9, 10.1.2.3", trusted: trusted) == "203.0.113.9")
        #expect(ClientAddress.resolve(peer: "::1", forwardedFor: nil, trusted: trusted) == "::1")
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: "garbage", trusted: trusted) == "127.0.0.1")
        // Every spelling of one address keys one limit.
        for spelling in ["2001:db8::1", "2001:0db8::1", "2001:DB8::1", "2001:db8:0:0:0:0:0:1"] {
            #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: spelling, trusted: trusted) == "2001:db8::1")
        }
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: "::ffff:192.0.2.7", trusted: trusted) == "192.0.2.7")
        #expect(ClientAddress.resolve(peer: "::FFFF:198.51.100.7", forwardedFor: nil, trusted: trusted) == "198.51.100.7")
        #expect(ClientAddress.Block("10.0.0.0/33") == nil)
        #expect(ClientAddress.Block("nope") == nil)
    }

    @Test func addressesHaveOneSpelling() {
        #expect(ClientAddress.normalized("2001:DB8::1") == "2001:db8::1")
        #expect(ClientAddress.normalized("2001:0db8:0000::0001") == "2001:db8::1")
        #expect(ClientAddress.normalized("::ffff:192.0.2.7") == "192.0.2.7")
        #expect(ClientAddress.normalized("::FFFF:c000:0207") == "192.0.2.7")
        #expect(ClientAddress.normalized("192.0.2.7") == "192.0.2.7")
        #expect(ClientAddress.normalized("unknown") == "unknown")
    }
}

@Suite("Socket liveness and the stop latch")
struct LivenessTests {
    @Test func pingOnceAfterActivityTimeoutThenDeadAfterPongTimeout() {
        let activity = SocketActivity()
        let start = ContinuousClock.now
        let a = Duration.seconds(120), p = Duration.seconds(30)
        #expect(activity.verdict(now: start + .seconds(119), activityTimeout: a, pongTimeout: p) == .alive)
        #expect(activity.verdict(now: start + .seconds(121), activityTimeout: a, pongTimeout: p) == .ping)
        #expect(activity.verdict(now: start + .seconds(125), activityTimeout: a, pongTimeout: p) == .alive)
        #expect(activity.verdict(now: start + .seconds(151), activityTimeout: a, pongTimeout: p) == .dead)
        activity.touch()  // a pong
        #expect(activity.verdict(now: .now + .seconds(121), activityTimeout: a, pongTimeout: p) == .ping)
    }

    @Test func latchWakesWaitersAndRacesLoseCleanly() async throws {
        let latch = Latch()
        #expect(await latch.wait(timeout: .milliseconds(20)) == false)
        let fast = try await latch.race { 42 }
        #expect(fast == 42)
        let cut = Task {
            try await latch.race {
                try await Task.sleep(for: .seconds(30))
                return 1
            }
        }
        try await Task.sleep(for: .milliseconds(50))
        latch.open()
        await #expect(throws: WorkerStopping.self) { try await cut.value }
        #expect(await latch.wait(timeout: .seconds(30)) == true)
    }
}
