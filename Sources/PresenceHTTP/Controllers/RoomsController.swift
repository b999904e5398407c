import Logging
import Foundation
import Hummingbird
import PresenceCore

/// `/api/rooms`: list, create, get, delete, present users, messages.
package struct RoomsController {
    package init(chat: ChatService, authenticator: Authenticator) {
        self.chat = chat
        self.authenticator = authenticator
    }

    let chat: ChatService
    let authenticator: Authenticator

    package func addRoutes(to router: Router<AppRequestContext>) {
        router.get("/api/rooms") { request, _ in
            let viewer = try await authenticator.optionalUser(request)
            let rooms = try await chat.listRooms(for: viewer)
            return JSONResponse.make(["rooms": JSONValue.array(rooms.map(\.json))])
        }
        router.post("/api/rooms") { request, context in
            let user = try await authenticator.authenticate(request)
            let body = try await JSONBody.read(request, context: context)
            // A missing type means public, as in ryOS.
            let typeText = try body.optionalString("type") ?? "public"
            guard let type = Room.Kind(rawValue: typeText) else { throw APIError.badRequest("Invalid room type") }
            let members = try body.optionalStrings("members") ?? []
            // ryOS names private rooms after their members ("@alice, @bob"); a public room needs its name.
            let name: String
            switch (try body.optionalString("name"), type) {
            case (let given?, _) where !given.trimmingCharacters(in: .whitespaces).isEmpty: name = given
            case (_, .public): throw APIError.badRequest("Room name is required for public rooms")
            case (_, .private):
                guard !members.isEmpty else { throw APIError.badRequest("At least one member is required for private rooms") }
                name = ChatService.privateRoomName(members: members + [user])
            }
            let room = try await chat.createRoom(name: name, type: type, members: members, by: user)
            return JSONResponse.make(["room": room.json], status: .created)
        }
        router.get("/api/rooms/:id") { request, context in
            let id = try roomID(context)
            let viewer = try await authenticator.optionalUser(request)
            let room = try await chat.room(id, viewer: viewer)
            return JSONResponse.make(["room": room.json])
        }
        router.delete("/api/rooms/:id") { request, context in
            let id = try roomID(context)
            let user = try await authenticator.authenticate(request)
            try await chat.deleteRoom(id, by: user)
            return JSONResponse.make(["success": true])
        }
        router.get("/api/rooms/:id/users") { request, context in
            let id = try roomID(context)
            let viewer = try await authenticator.optionalUser(request)
            let query = request.uri.queryParameters
            // Every parameter given is checked, whichever answer it asks for.
            let limit = try Query.int(request, "limit", default: 100, range: 1...100)
            let cursor = query.get("cursor").flatMap { $0.isEmpty ? nil : $0 }
            if let cursor, cursor.utf8.count > 200 { throw APIError.badRequest("Invalid cursor") }
            if let count = query.get("count") {
                guard count == "true" else { throw APIError.badRequest("Query parameter 'count' must be true") }
                return JSONResponse.make(["count": .int(try await chat.presentCount(in: id, viewer: viewer))])
            }
            if query.get("limit") != nil || query.get("cursor") != nil {
                let page = try await chat.presentUsers(in: id, viewer: viewer, limit: limit, cursor: cursor)
                let users: [JSONValue] = page.members.map {
                    ["username": .string($0.username), "lastSeen": .int64($0.lastSeen), "joinedAt": .int64($0.joinedAt)]
                }
                return JSONResponse.make(["users": .array(users), "nextCursor": .optional(page.nextCursor)])
            }
            // ryOS's answer: everyone, by name.
            return JSONResponse.make(bytes: PresentUser.listJSON(try await chat.presentUsers(in: id, viewer: viewer)))
        }
        router.get("/api/rooms/:id/messages") { request, context in
            let id = try roomID(context)
            let viewer = try await authenticator.optionalUser(request)
            let limit = try Query.int(request, "limit", default: 20, range: 1...100)
            let before = request.uri.queryParameters.get("before")
            if let before, !ChatMessage.isValidID(before) {
                throw APIError.badRequest("Invalid 'before' cursor: expected a message id")
            }
            let messages = try await chat.messages(room: id, viewer: viewer, limit: limit, before: before)
            return JSONResponse.make(["messages": JSONValue.array(messages.map(\.json))])
        }
        router.delete("/api/rooms/:id/messages/:messageId") { request, context in
            let id = try roomID(context)
            guard let messageID = context.pathParameter("messageId"), ChatMessage.isValidID(messageID) else {
                throw APIError.badRequest("Invalid message ID format")
            }
            let user = try await authenticator.authenticate(request)
            try await chat.deleteMessage(room: id, message: messageID, by: user)
            return JSONResponse.make(["success": true])
        }
        router.post("/api/rooms/:id/typing") { request, context in
            let id = try roomID(context)
            let user = try await authenticator.authenticate(request)
            let body = try await JSONBody.read(request, context: context)
            let isTyping = try body.optionalBool("isTyping") ?? true
            try await chat.typing(room: id, user: user, isTyping: isTyping)
            return JSONResponse.make(["success": true])
        }
        // ryOS's first read when Chats opens: the newest 20 messages of up to 20 rooms in one call.
        router.get("/api/messages/bulk") { request, _ in
            guard let raw = request.uri.queryParameters.get("roomIds") else {
                throw APIError.badRequest("roomIds query parameter is required")
            }
            var ids: [String] = []
            for part in raw.split(separator: ",") {
                let id = part.trimmingCharacters(in: .whitespaces)
                guard !id.isEmpty else { continue }
                guard Validation.isRoomID(id) else { throw APIError.badRequest("Invalid room ID format") }
                if !ids.contains(id) { ids.append(id) }
            }
            guard !ids.isEmpty else { throw APIError.badRequest("At least one room ID is required") }
            guard ids.count <= 20 else { throw APIError.badRequest("At most 20 room IDs") }
            let viewer = try await authenticator.optionalUser(request)
            let result = try await chat.newestMessages(rooms: ids, viewer: viewer, limit: 20)
            var map: [String: JSONValue] = [:]
            for (id, messages) in result.messages { map[id] = .array(messages.map(\.json)) }
            return JSONResponse.make([
                "messagesMap": .object(map),
                "validRoomIds": .array(result.valid.map(JSONValue.string)),
                "invalidRoomIds": .array(result.invalid.map(JSONValue.string)),
            ])
        }
        router.post("/api/rooms/:id/messages") { request, context in
            let id = try roomID(context)
            let user = try await authenticator.authenticate(request)
            let body = try await JSONBody.read(request, context: context)
            let content = try body.string("content").trimmingCharacters(in: .whitespacesAndNewlines)
            guard (1...1000).contains(content.unicodeScalars.count) else {
                throw APIError.badRequest("Field 'content' must be 1-1000 characters")
            }
            let message = try await chat.postMessage(room: id, user: user, content: content)
            return JSONResponse.make(["message": message.json], status: .created)
        }
    }
}

/// The `:id` parameter, checked against the room id rule.
package func roomID(_ context: AppRequestContext) throws -> String {
    guard let id = context.pathParameter("id"), Validation.isRoomID(id) else {
        throw APIError.badRequest("Invalid room ID format")
    }
    return id
}
