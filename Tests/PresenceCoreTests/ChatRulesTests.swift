import Testing
@testable import PresenceCore

@Suite("Chat rules (in memory)")
struct ChatRulesTests {
    @Test func switchMovesPresenceAndAnnouncesBothSides() async throws {
        let f = Fixture()
        try await f.register("alice")
        _ = try await f.chat.rooms.create(id: "general", name: "general", type: .public, createdBy: "system", members: [])
        _ = try await f.chat.rooms.create(id: "random", name: "random", type: .public, createdBy: "system", members: [])
        try await f.chat.switchRooms(user: "alice", previous: nil, next: "general")
        f.events.clear()
        try await f.chat.switchRooms(user: "alice", previous: "general", next: "random")
        #expect(try await f.present(in: "general") == [])
        #expect(try await f.present(in: "random") == ["alice"])
        let updates = f.events.events.filter { $0.event == "presence-update" }
        #expect(updates.map(\.channel) == ["room-general", "room-random"])
        #expect(updates.map { $0.data["action"]?.string } == ["left", "joined"])
        #expect(f.events.events.contains { $0.event == "pusher_internal:member_added" && $0.channel == "presence-room-random" })
        #expect(try await f.chat.presence.presentRooms(of: "alice") == ["random"])
    }

    @Test func aRefusedSwitchChangesNothing() async throws {
        let f = Fixture()
        try await f.register("alice", "bobby", "carol")
        _ = try await f.chat.rooms.create(id: "general", name: "general", type: .public, createdBy: "system", members: [])
        let secret = try await f.chat.createRoom(name: "secret", type: .private, members: ["bobby"], by: "carol")
        try await f.chat.switchRooms(user: "alice", previous: nil, next: "general")
        f.events.clear()
        #expect(await domainError { try await f.chat.switchRooms(user: "alice", previous: "general", next: secret.id) }
            == .forbidden("Forbidden - not a room member"))
        #expect(await domainError { try await f.chat.switchRooms(user: "alice", previous: "general", next: "nowhere") } == .roomNotFound)
        #expect(await domainError { try await f.chat.switchRooms(user: "alice", previous: "ticket_T1", next: nil) }
            == .invalid("Room IDs starting with ticket_ belong to support rooms"))
        #expect(try await f.present(in: "general") == ["alice"])
        #expect(f.events.events.isEmpty)
    }

    @Test func presenceChangesAreLimitedPerUser() async throws {
        var settings = ChatSettings()
        settings.presenceLimit = 3
        let f = Fixture(chatSettings: settings)
        try await f.register("alice")
        _ = try await f.chat.rooms.create(id: "a", name: "a", type: .public, createdBy: "system", members: [])
        _ = try await f.chat.rooms.create(id: "b", name: "b", type: .public, createdBy: "system", members: [])
        for (previous, next) in [(nil, "a"), ("a", "b"), ("b", "a")] as [(String?, String)] {
            try await f.chat.switchRooms(user: "alice", previous: previous, next: next)
        }
        guard case .rateLimited(let decision)? = await domainError({ try await f.chat.switchRooms(user: "alice", previous: "a", next: "b") }) else {
            Issue.record("the fourth switch was not limited")
            return
        }
        #expect(decision.remaining == 0 && decision.retryAfterSeconds == 60 && decision.name == "presence")
        #expect(try await f.present(in: "a") == ["alice"])
    }

    @Test func publicRoomsAreForAdminsAndPrivateRoomsForTheirMembers() async throws {
        let f = Fixture()
        try await f.register("alice", "bobby", "carol")
        #expect(await domainError { _ = try await f.chat.createRoom(name: "lobby", type: .public, members: [], by: "alice") } == .forbidden("Forbidden"))
        let lobby = try await f.chat.createRoom(name: "Lobby Two", type: .public, members: [], by: "boss")
        #expect(lobby.id == "lobby-two")
        let dm = try await f.chat.createRoom(name: "dm", type: .private, members: ["bobby"], by: "alice")
        #expect(dm.members == ["alice", "bobby"])
        #expect(try await f.chat.room(dm.id, viewer: "bobby").id == dm.id)
        #expect(await domainError { _ = try await f.chat.room(dm.id, viewer: "carol") } == .forbidden("Forbidden"))
        #expect(await domainError { _ = try await f.chat.room(dm.id, viewer: nil) } == .forbidden("Forbidden"))
        #expect(try await f.chat.listRooms(for: "carol").map(\.id) == ["lobby-two"])
        #expect(await domainError { _ = try await f.chat.createRoom(name: "x", type: .private, members: ["ghost"], by: "alice") }
            == .invalid("Unknown user: ghost"))
        #expect(await domainError { _ = try await f.chat.createRoom(name: "bad\u{202E}name", type: .private, members: [], by: "alice") }
            == .invalid("Room name must not contain control or bidirectional-override characters"))
    }

    @Test func leavingAPrivateRoomEndsAccessAndAnnouncesTheLeave() async throws {
        let f = Fixture()
        try await f.register("alice", "bobby", "carol")
        let room = try await f.chat.createRoom(name: "trio", type: .private, members: ["bobby", "carol"], by: "alice")
        try await f.chat.switchRooms(user: "carol", previous: nil, next: room.id)
        f.events.clear()
        try await f.chat.deleteRoom(room.id, by: "carol")
        #expect(await domainError { _ = try await f.chat.room(room.id, viewer: "carol") } == .forbidden("Forbidden"))
        #expect(try await f.present(in: room.id) == [])
        #expect(f.events.accessChanges == [AccessChange(user: "carol", channels: ["private-room-\(room.id)", "presence-room-\(room.id)"])])
        #expect(f.events.events.contains { $0.event == "pusher_internal:member_removed" && $0.data["user_id"]?.string == "carol" })
        // The last but one member leaving deletes the room, and everyone's access ends.
        f.events.clear()
        try await f.chat.deleteRoom(room.id, by: "bobby")
        #expect(await domainError { _ = try await f.chat.room(room.id, viewer: "alice") } == .roomNotFound)
        #expect(f.events.accessChanges == [AccessChange(user: nil, channels: ["private-room-\(room.id)", "presence-room-\(room.id)"])])
    }

    @Test func invitationsAndRoomsAreLimitedAllOrNone() async throws {
        var settings = ChatSettings()
        settings.inviteLimit = 3
        settings.roomLimit = 2
        let f = Fixture(chatSettings: settings)
        try await f.register("alice", "usr1", "usr2", "usr3", "usr4")
        #expect(await domainError { _ = try await f.chat.createRoom(name: "big", type: .private, members: ["usr1", "usr2", "usr3", "usr4"], by: "alice") } != nil)
        #expect(try await f.chat.listRooms(for: "alice").isEmpty)
        _ = try await f.chat.createRoom(name: "one", type: .private, members: ["usr1", "usr2", "usr3"], by: "alice")
        _ = try await f.chat.createRoom(name: "solo", type: .private, members: [], by: "alice")
        guard case .rateLimited(let decision)? = await domainError({ _ = try await f.chat.createRoom(name: "third", type: .private, members: [], by: "alice") }) else {
            Issue.record("the third room was not limited")
            return
        }
        #expect(decision.name == "rooms" && decision.windowSeconds == 3600)
    }

    @Test func messagesNeedAccessAndAreLimitedAndHistoryIsTrimmed() async throws {
        var settings = ChatSettings()
        settings.messageLimit = 4
        settings.historyLimit = 3
        let f = Fixture(chatSettings: settings)
        try await f.register("alice", "bobby", "eve")
        let dm = try await f.chat.createRoom(name: "dm", type: .private, members: ["bobby"], by: "alice")
        #expect(await domainError { _ = try await f.chat.postMessage(room: dm.id, user: "eve", content: "hi") } == .forbidden("Forbidden"))
        for i in 1...4 { _ = try await f.chat.postMessage(room: dm.id, user: "alice", content: "m\(i)") }
        guard case .rateLimited? = await domainError({ _ = try await f.chat.postMessage(room: dm.id, user: "alice", content: "m5") }) else {
            Issue.record("the fifth message was not limited")
            return
        }
        let messages = try await f.chat.messages(room: dm.id, viewer: "bobby", limit: 10, before: nil)
        #expect(messages.map(\.content) == ["m4", "m3", "m2"])
        #expect(f.events.events.filter { $0.event == "room-message" }.map(\.channel).contains("private-chats-bobby"))
    }
}
