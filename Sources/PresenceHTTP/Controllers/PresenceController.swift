import Logging
import Foundation
import Hummingbird
import PresenceCore

/// `POST /api/presence/switch` and `POST /api/presence/heartbeat`.
struct PresenceController {
    let chat: ChatService
    let authenticator: Authenticator

    func addRoutes(to router: Router<AppRequestContext>) {
        router.post("/api/presence/switch") { request, context in
            let body = try await JSONBody.read(request, context: context)
            let user = try await authenticator.authenticate(request)
            let username = try body.string("username")
            guard username.lowercased() == user else { throw APIError(.forbidden, "Forbidden - username mismatch") }
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
        router.post("/api/presence/heartbeat") { request, context in
            let body = try await JSONBody.read(request, context: context)
            let user = try await authenticator.authenticate(request)
            let room = try body.optionalString("roomId")
            if let room, !Validation.isRoomID(room) { throw APIError.badRequest("Invalid room ID format") }
            try await chat.heartbeat(user: user, room: room)
            return JSONResponse.make(["success": true])
        }
    }
}
