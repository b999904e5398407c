import Testing
@testable import PresenceCore

/// The rules of the ryOS face on the domain: typing, message deletion, the bulk read, private room names, chat text,
/// and the heartbeat that brings back the room a client shows.
@Suite("ryOS rules (in memory)")
struct RyOSRulesTests {
    @Test func typingGoesToTheRoomChannelForThoseWhoMayBeThere() async throws {
        let f = Fixture()
        try await f.register("alice", "bobby", "carol")
        _ = try await f.chat.rooms.create(id: "general", name: "general", type: .public, createdBy: "system", members: [])
        let dm = try await f.chat.createRoom(name: "dm", type: .private, members: ["bobby"], by: "alice")
        f.events.clear()
        try await f.chat.typing(room: "general", user: "alice", isTyping: true)
        try await f.chat.typing(room: dm.id, user: "bobby", isTyping: true)
        #expect(await domainError { try await f.chat.typing(room: dm.id, user: "carol", isTyping: true) } == .forbidden("Forbidden - not a room member"))
        #expect(await domainError { try await f.chat.typing(room: "nowhere", user: "alice", isTyping: true) } == .roomNotFound)
        let typing = f.events.events.filter { $0.event == "user-typing" }
        #expect(typing.map(\.channel) == ["room-general", "private-room-\(dm.id)"])
        #expect(typing.first?.data == ["username": "alice", "isTyping": true])
    }

    @Test func onlyAdminsDeleteMessagesAndTheRoomIsTold() async throws {
        let f = Fixture(admins: ["ryo"])
        try await f.register("alice", "bobby")
        let dm = try await f.chat.createRoom(name: "dm", type: .private, members: ["bobby"], by: "alice")
        let message = try await f.chat.postMessage(room: dm.id, user: "alice", content: "oops")
        f.events.clear()
        #expect(await domainError { try await f.chat.deleteMessage(room: dm.id, message: message.id, by: "alice") } == .forbidden("Forbidden - admin required"))
        try await f.chat.deleteMessage(room: dm.id, message: message.id, by: "ryo")
        #expect(await domainError { try await f.chat.deleteMessage(room: dm.id, message: message.id, by: "ryo") } == .notFound("Message not found"))
        #expect(try await f.chat.messages(room: dm.id, viewer: "alice", limit: 10, before: nil).isEmpty)
        let deleted = f.events.events.filter { $0.event == "message-deleted" }
        #expect(Set(deleted.map(\.channel)) == ["private-room-\(dm.id)", "private-chats-alice", "private-chats-bobby"])
        #expect(deleted.first?.data == ["roomId": .string(dm.id), "messageId": .string(message.id)])
    }

    @Test func bulkReadListsWhatTheViewerCannotReadAsInvalid() async throws {
        let f = Fixture()
        try await f.register("alice", "bobby", "carol")
        _ = try await f.chat.rooms.create(id: "general", name: "general", type: .public, createdBy: "system", members: [])
        let dm = try await f.chat.createRoom(name: "dm", type: .private, members: ["bobby"], by: "alice")
        for i in 0..<25 { _ = try await f.chat.history.append(room: "general", username: "alice", content: "m\(i)") }
        let forCarol = try await f.chat.newestMessages(rooms: ["general", dm.id, "nowhere"], viewer: "carol", limit: 20)
        #expect(forCarol.valid == ["general"])
        #expect(forCarol.invalid == [dm.id, "nowhere"])
        #expect(forCarol.messages["general"]?.map(\.content).first == "m24")
        #expect(forCarol.messages["general"]?.count == 20)
        let forBobby = try await f.chat.newestMessages(rooms: [dm.id], viewer: "bobby", limit: 20)
        #expect(forBobby.valid == [dm.id] && forBobby.messages[dm.id] == [])
    }

    @Test func chatTextIsStoredEscapedAsRyOSDoes() async throws {
        let f = Fixture()
        try await f.register("alice")
        _ = try await f.chat.rooms.create(id: "general", name: "general", type: .public, createdBy: "system", members: [])
        let message = try await f.chat.postMessage(room: "general", user: "alice", content: #"<b>a</b> & "q" 'x'"#)
        #expect(message.content == "&lt;b&gt;a&lt;/b&gt; &amp; &quot;q&quot; &#039;x&#039;")
        #expect(HTMLText.escape("plain ✓") == "plain ✓")
        #expect(ChatService.privateRoomName(members: ["Bobby", "alice", "bobby"]) == "@alice, @bobby")
    }

    @Test func theHeartbeatBringsBackTheRoomTheClientShows() async throws {
        var settings = ChatSettings()
        settings.presenceTTL = .seconds(90)
        let f = Fixture(chatSettings: settings)
        try await f.register("alice", "bobby")
        _ = try await f.chat.rooms.create(id: "general", name: "general", type: .public, createdBy: "system", members: [])
        let dm = try await f.chat.createRoom(name: "dm", type: .private, members: ["bobby"], by: "alice")
        try await f.chat.switchRooms(user: "alice", previous: nil, next: "general")
        // The tab was hidden: no heartbeat, and the presence lapsed.
        f.world.advance(.seconds(120))
        #expect(try await f.present(in: "general") == [])
        f.events.clear()
        try await f.chat.heartbeat(user: "alice", room: nil)
        #expect(try await f.present(in: "general") == ["alice"])
        #expect(f.events.events.contains { $0.event == "presence-update" && $0.data["action"]?.string == "joined" })
        // A heartbeat while present refreshes without announcing anything.
        f.events.clear()
        try await f.chat.heartbeat(user: "alice", room: nil)
        #expect(f.events.events.filter { $0.event == "presence-update" }.isEmpty)
        // The client moved to the AI pane (no room): nothing comes back.
        try await f.chat.switchRooms(user: "alice", previous: "general", next: nil)
        f.world.advance(.seconds(120))
        try await f.chat.heartbeat(user: "alice", room: nil)
        #expect(try await f.present(in: "general") == [])
        // A room the user may no longer enter is forgotten, not re-entered.
        try await f.chat.switchRooms(user: "bobby", previous: nil, next: dm.id)
        try await f.chat.deleteRoom(dm.id, by: "bobby")
        f.world.advance(.seconds(120))
        try await f.chat.heartbeat(user: "bobby", room: nil)
        #expect(try await f.chat.users.currentRoom(of: "bobby") == nil)
    }
}
