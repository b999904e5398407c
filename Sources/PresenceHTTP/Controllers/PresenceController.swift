import Logging
import Foundation
import Hummingbird
import PresenceCore

/// `POST /api/presence/switch`, `POST /api/presence/heartbeat` and `GET /api/presence/heartbeat`.
package struct PresenceController {
    package init(chat: ChatService, channels: ChannelPresence, authenticator: Authenticator) {
        self.chat = chat
        self.channels = channels
        self.authenticator = authenticator
    }

    let chat: ChatService
    /// ryOS's global presence (`presence-global`).
    let channels: ChannelPresence
    let authenticator: Authenticator

    package func addRoutes(to router: Router<AppRequestContext>) {
        router.post("/api/presence/switch") { request, context in
            let body = try await JSONBody.read(request, context: context)
            let user = try await authenticator.authenticate(request)
            // ryOS's UI sends no username (the session says who); one that is sent must be the caller's.
            if let username = try body.optionalString("username"), username.lowercased() != user {
                throw APIError(.forbidden, "Forbidden - username mismatch")
            }
            let previous = try body.optionalString("previousRoomId")
            let next = try body.optionalString("nextRoomId")
            for id in [previous, next].compactMap({ $0 }) {
                guard Validation.isRoomID(id) else { throw APIError.badRequest("Invalid room ID format") }
                guard !Validation.isSupportRoomID(id) else {
                    throw APIError.badRequest("Room IDs starting with ticket_ belong to support rooms")
                }
            }
            if previous == next { return JSONResponse.make(["success": true, "noop": true]) }
            try await chat.switchRooms(user: user, previous: previous, next: next)
            return JSONResponse.make(["success": true])
        }
        // A client that is open: with `roomId`, presence in that room is refreshed (this service's web client); without
        // one (ryOS's UI, every 60 s while its tab is visible), the user is present on `presence-global` for 90 s
        // (`user-heartbeat` for its subscribers), and their rooms are refreshed, the room their client shows brought
        // back if it lapsed.
        router.post("/api/presence/heartbeat") { request, context in
            let body = try await JSONBody.read(request, context: context)
            let user = try await authenticator.authenticate(request)
            let room = try body.optionalString("roomId")
            if let room, !Validation.isRoomID(room) { throw APIError.badRequest("Invalid room ID format") }
            if room == nil { try await channels.heartbeat(user: user) }
            try await chat.heartbeat(user: user, room: room)
            return JSONResponse.make(["success": true])
        }
        router.get("/api/presence/heartbeat") { request, _ in
            _ = try await authenticator.authenticate(request)
            let users = try await channels.globalMembers()
            return JSONResponse.make(["users": .array(users.map(JSONValue.string))])
        }
    }
}
