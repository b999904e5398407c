import Testing
@testable import PresenceCore

/// Issue 28: who a signed subscription rides on, the access-change log a subscribe consults, and refreshes that never
/// bring back a socket that left, in memory.
@Suite("Channel access rules (in memory)")
struct ChannelAccessRulesTests {
    // MARK: - Admission

    @Test func aGovernedSubscriptionNeedsAGrantAndAccessNow() async throws {
        let f = Fixture()
        try await f.register("alice", "bobby", "carol")
        let grants = InMemoryGrantStore()
        let access = ChannelAccess(chat: f.chat, support: f.support, grants: grants)
        let room = try await f.chat.createRoom(name: "trio", type: .private, members: ["bobby", "carol"], by: "alice")
        let priv = "private-room-\(room.id)", pres = "presence-room-\(room.id)"
        // A signature alone is not enough: no grant names whom it was given to.
        #expect(try await access.admit(channel: priv, socket: "1.1", user: nil) == .unsigned)
        #expect(try await access.admit(channel: pres, socket: "1.1", user: "carol") == .unsigned)
        try await access.recordGrant(socket: "1.1", channel: priv, user: "carol")
        try await access.recordGrant(socket: "1.1", channel: pres, user: "carol")
        #expect(try await access.admit(channel: priv, socket: "1.1", user: nil) == .allowed(holder: "carol"))
        #expect(try await access.admit(channel: pres, socket: "1.1", user: "carol") == .allowed(holder: "carol"))
        // A presence signature for someone else than the grant's holder, or on another socket, gives nothing.
        #expect(try await access.admit(channel: pres, socket: "1.1", user: "bobby") == .unsigned)
        #expect(try await access.admit(channel: priv, socket: "1.2", user: nil) == .unsigned)
        // carol leaves: the grant stands, access does not.
        try await f.chat.deleteRoom(room.id, by: "carol")
        #expect(try await access.admit(channel: priv, socket: "1.1", user: nil) == .forbidden)
        // A sign-out forgets every grant of hers, and only hers.
        try await access.recordGrant(socket: "1.1", channel: "private-chats-carol", user: "carol")
        try await access.recordGrant(socket: "1.3", channel: "private-chats-bobby", user: "bobby")
        try await access.endGrants(of: "carol")
        #expect(try await access.admit(channel: "private-chats-carol", socket: "1.1", user: nil) == .unsigned)
        #expect(try await access.admit(channel: "private-chats-bobby", socket: "1.3", user: nil) == .allowed(holder: "bobby"))
    }

    // MARK: - The access-change log

    @Test func aSubscribeChecksAgainOnlyWhenAChangeThatMayConcernItCameIn() {
        var log = AccessChangeLog()
        let start = log.epoch
        #expect(!log.mayConcern(since: start, channel: "private-room-a", holder: "alice"))
        log.record(AccessChange(user: "bobby", channels: ["private-room-a"]))
        log.record(AccessChange(user: nil, channels: ["private-room-b"]))
        log.record(AccessChange(user: nil, channels: [], prefix: "private-room-ticket_"))
        #expect(log.epoch == start + 3)
        #expect(!log.mayConcern(since: start, channel: "private-room-a", holder: "alice"), "bobby's change")
        #expect(log.mayConcern(since: start, channel: "private-room-a", holder: "bobby"))
        #expect(log.mayConcern(since: start, channel: "private-room-b", holder: "alice"), "everyone's on the channel")
        #expect(log.mayConcern(since: start, channel: "private-room-ticket_T-1", holder: "alice"), "by prefix")
        #expect(!log.mayConcern(since: start + 1, channel: "private-room-a", holder: "bobby"), "before the epoch read")
        #expect(!log.mayConcern(since: log.epoch, channel: "private-room-b", holder: "alice"))
        // A sign-out: every governed channel of that user.
        let before = log.epoch
        log.record(AccessChange(user: "carol", prefix: ""))
        #expect(log.mayConcern(since: before, channel: "private-chats-carol", holder: "carol"))
        #expect(log.mayConcern(since: before, channel: "presence-room-x", holder: "carol"))
        #expect(!log.mayConcern(since: before, channel: "private-chats-alice", holder: "alice"))
        // After a reconnect anything may have been missed.
        let reconnect = log.epoch
        log.recordEverything()
        #expect(log.mayConcern(since: reconnect, channel: "private-room-z", holder: "zed"))
    }

    @Test func aQuestionOlderThanTheLogKeepsIsAnsweredYes() {
        var log = AccessChangeLog(capacity: 4)
        let start = log.epoch
        for n in 0..<20 { log.record(AccessChange(user: "u\(n)", channels: ["private-room-\(n)"])) }
        #expect(log.mayConcern(since: start, channel: "private-room-x", holder: "nobody"), "forgotten: assume the worst")
        #expect(!log.mayConcern(since: log.epoch - 2, channel: "private-room-x", holder: "nobody"))
        #expect(log.mayConcern(since: log.epoch - 2, channel: "private-room-19", holder: "u19"))
    }

    /// The race of issue 28 step by step: the access check passes, the change arrives and is re-checked against the
    /// live subscriptions before this one is registered (so that re-check misses it), then it is registered: the log
    /// says a change came in, and the second check refuses.
    @Test func aRevocationBetweenTheCheckAndTheRegistrationIsCaught() async throws {
        let f = Fixture()
        try await f.register("alice", "bobby", "carol")
        let access = ChannelAccess(chat: f.chat, support: f.support, grants: InMemoryGrantStore())
        let room = try await f.chat.createRoom(name: "trio", type: .private, members: ["bobby", "carol"], by: "alice")
        let channel = "private-room-\(room.id)"
        try await access.recordGrant(socket: "1.1", channel: channel, user: "carol")
        var log = AccessChangeLog()
        var registered: [String: String] = [:]  // channel → holder, as the hub's sockets hold them

        let epoch = log.epoch
        #expect(try await access.admit(channel: channel, socket: "1.1", user: nil) == .allowed(holder: "carol"))
        // carol leaves; the change is published and arrives.
        try await f.chat.deleteRoom(room.id, by: "carol")
        let change = try #require(f.events.accessChanges.last)
        #expect(change.concerns(channel: channel, holder: "carol"))
        log.record(change)
        #expect(registered.filter { change.concerns(channel: $0.key, holder: $0.value) }.isEmpty, "nothing to re-check yet")
        // Registered now; the log says to check again, which refuses.
        registered[channel] = "carol"
        #expect(log.mayConcern(since: epoch, channel: channel, holder: "carol"))
        #expect(try await access.admit(channel: channel, socket: "1.1", user: nil) == .forbidden)
    }

    // MARK: - Refreshes

    @Test func aRefreshDoesNotBringBackASocketThatLeft() async throws {
        let f = Fixture()
        let presence = ChannelPresence(sockets: f.presence, presence: f.presence, chat: f.chat, ttl: .seconds(30))
        _ = try await presence.attach(channel: "presence-game", user: "alice", socket: "1.1")
        _ = try await presence.attach(channel: "presence-game", user: "alice", socket: "1.2")
        // The worker took its snapshot with both sockets; 1.1 leaves before the refresh lands.
        let snapshot = [(channel: "presence-game", user: "alice", socket: "1.1"), (channel: "presence-game", user: "alice", socket: "1.2")]
        try await presence.detach(channel: "presence-game", user: "alice", socket: "1.1")
        let lapsed = try await presence.refresh(snapshot)
        #expect(lapsed.map(\.socket) == ["1.1"], "reported, not written back")
        f.events.clear()
        // So 1.2's leave is alice's last, and announced.
        try await presence.detach(channel: "presence-game", user: "alice", socket: "1.2")
        #expect(f.events.events.map(\.event) == [ServiceEvent.memberRemoved.rawValue])
        #expect(try await presence.members(channel: "presence-game") == [])
    }
}
