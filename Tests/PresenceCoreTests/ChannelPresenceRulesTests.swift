import Testing
@testable import PresenceCore

@Suite("Presence channel rules (in memory)")
struct ChannelPresenceRulesTests {
    func channels(_ f: Fixture) -> ChannelPresence {
        ChannelPresence(sockets: f.presence, presence: f.presence, chat: f.chat, ttl: .seconds(30))
    }

    @Test func aUserLeavesOnTheirLastSocketOnly() async throws {
        let f = Fixture()
        let presence = channels(f)
        let first = try await presence.attach(channel: "presence-game", user: "alice", socket: "1.1")
        #expect(first.isNew && first.members == ["alice"])
        let second = try await presence.attach(channel: "presence-game", user: "alice", socket: "1.2")
        #expect(!second.isNew)
        #expect(f.events.events.filter { $0.event == ServiceEvent.memberAdded.rawValue }.map(\.channel) == ["presence-game"])
        f.events.clear()
        try await presence.detach(channel: "presence-game", user: "alice", socket: "1.1")
        #expect(f.events.events.isEmpty, "another socket still holds the user")
        #expect(try await presence.members(channel: "presence-game") == ["alice"])
        try await presence.detach(channel: "presence-game", user: "alice", socket: "1.2")
        #expect(f.events.events.map(\.event) == [ServiceEvent.memberRemoved.rawValue])
        #expect(try await presence.members(channel: "presence-game") == [])
    }

    @Test func aChatRoomChannelIsTheRoomItself() async throws {
        let f = Fixture()
        try await f.register("alice")
        _ = try await f.chat.rooms.create(id: "general", name: "general", type: .public, createdBy: "system", members: [])
        _ = try await channels(f).attach(channel: "presence-room-general", user: "alice", socket: "1.1")
        #expect(try await f.present(in: "general") == ["alice"])
        let update = try #require(f.events.events.first { $0.event == ServiceEvent.presenceUpdate.rawValue })
        #expect(update.channel == "room-general" && update.data["action"]?.string == PresenceAction.joined.rawValue)
        // A presence channel that is not a room gets a room of its own, apart from chat rooms.
        #expect(ChannelPresence.room(for: "presence-lobby") == ("pch:presence-lobby", false))
    }

    @Test func refreshReportsTheSocketsWhosePresenceLapsed() async throws {
        let f = Fixture()
        let presence = channels(f)
        _ = try await presence.attach(channel: "presence-a", user: "alice", socket: "1.1")
        _ = try await presence.attach(channel: "presence-b", user: "bobby", socket: "1.2")
        // alice's presence is removed behind the socket's back (an access change, or the sweeper).
        _ = try await f.presence.leave(room: "pch:presence-a", user: "alice")
        let lapsed = try await presence.refresh([
            (channel: "presence-a", user: "alice", socket: "1.1"), (channel: "presence-b", user: "bobby", socket: "1.2"),
        ])
        #expect(lapsed.map(\.user) == ["alice"])
        #expect(try await presence.members(channel: "presence-b") == ["bobby"])
    }
}
