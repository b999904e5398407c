import Foundation
import Hummingbird
import Logging
import PresenceCore

/// `/support/{ticketId}/...` (ticket rooms), `/api/support/queue` (tickets with a customer waiting) and
/// `/api/admin/agents` (who the agents are).
package struct SupportController {
    package init(support: SupportService, authenticator: Authenticator) {
        self.support = support
        self.authenticator = authenticator
    }

    let support: SupportService
    let authenticator: Authenticator

    package func addRoutes(to router: Router<AppRequestContext>) {
        post("/support/:ticketId/join", router) { request, context, user, ticket in
            let body = try await JSONBody.read(request, context: context)
            let roleText = try body.optionalString("role") ?? "customer"
            guard let role = SupportMember.Role(rawValue: roleText) else {
                throw APIError.badRequest("Field 'role' must be one of customer, agent, observer")
            }
            let member = try await support.join(ticket: ticket, user: user, role: role)
            return JSONResponse.make(["member": member.json])
        }
        post("/support/:ticketId/typing", router) { request, context, user, ticket in
            let body = try await JSONBody.read(request, context: context)
            let typing = try body.bool("typing")
            let member = try await support.typing(ticket: ticket, user: user, typing: typing)
            return JSONResponse.make(["presence": ["status": "online", "typing": JSONValue.bool(member.typing)] as JSONValue])
        }
        post("/support/:ticketId/heartbeat", router) { _, _, user, ticket in
            let expiresAt = try await support.heartbeat(ticket: ticket, user: user)
            return JSONResponse.make(["expiresAt": JSONValue.int64(expiresAt)])
        }
        post("/support/:ticketId/leave", router) { _, _, user, ticket in
            try await support.leave(ticket: ticket, user: user)
            return JSONResponse.make(["success": true])
        }
        post("/support/:ticketId/metadata", router) { request, context, user, ticket in
            let body = try await JSONBody.read(request, context: context)
            let priority: String?? = body.has("priority") ? .some(try body.optionalString("priority")) : .none
            let assigned: String?? = body.has("assignedAgentId") ? .some(try body.optionalString("assignedAgentId")) : .none
            let status = try body.optionalString("status")
            if body.has("status") && status == nil { throw APIError.badRequest("Field 'status' must be one of open, pending, resolved") }
            let customer = try body.optionalString("customerId")
            if body.has("customerId") && customer == nil {
                throw APIError.badRequest("Field 'customerId' must be a registered user's username")
            }
            let room = try await support.updateMetadata(
                ticket: ticket, user: user, priority: priority, assignedAgentId: assigned, status: status, customer: customer
            )
            return JSONResponse.make(["room": room.json])
        }
        get("/support/:ticketId/members", router) { request, _, user, ticket in
            let limit = try Query.int(request, "limit", default: 25, range: 1...100)
            let cursor = request.uri.queryParameters.get("cursor").flatMap { $0.isEmpty ? nil : $0 }
            let page = try await support.members(ticket: ticket, user: user, limit: limit, cursor: cursor)
            return JSONResponse.make([
                "members": JSONValue.array(page.members.map(\.json)), "nextCursor": .optional(page.nextCursor),
            ] as JSONValue)
        }
        post("/support/:ticketId/messages", router) { request, context, user, ticket in
            let body = try await JSONBody.read(request, context: context)
            let content = try body.string("content")
            guard (1...4000).contains(content.unicodeScalars.count), !content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw APIError.badRequest("Field 'content' must be 1-4000 characters")
            }
            let message = try await support.postMessage(ticket: ticket, user: user, content: content)
            return JSONResponse.make(["message": message.json], status: .created)
        }
        get("/support/:ticketId/messages", router) { request, _, user, ticket in
            let limit = try Query.int(request, "limit", default: 50, range: 1...100)
            let after = request.uri.queryParameters.get("after")
            if let after, !ChatMessage.isValidID(after) {
                throw APIError.badRequest("Invalid 'after' cursor: expected a message id")
            }
            let messages = try await support.messages(ticket: ticket, user: user, limit: limit, after: after)
            return JSONResponse.make(["messages": JSONValue.array(messages.map(\.json))])
        }
        post("/support/:ticketId/close", router) { request, context, user, ticket in
            let body = try await JSONBody.read(request, context: context)
            let deleteHistory = try body.optionalBool("deleteHistory") ?? false
            let deleteSnapshots = try body.optionalBool("deleteSnapshots") ?? false
            _ = try await support.close(ticket: ticket, user: user, deleteHistory: deleteHistory, deleteSnapshot: deleteSnapshots)
            return JSONResponse.make([
                "closed": true, "historyKept": .bool(!deleteHistory), "snapshotKept": .bool(!deleteSnapshots),
            ] as JSONValue)
        }
        post("/support/:ticketId/reopen", router) { _, _, user, ticket in
            let room = try await support.reopen(ticket: ticket, user: user)
            return JSONResponse.make(["room": room.json])
        }
        get("/support/:ticketId/snapshot", router) { _, _, user, ticket in
            JSONResponse.make(["snapshot": try await support.snapshot(ticket: ticket, user: user)] as JSONValue)
        }
        get("/support/:ticketId/attendance", router) { _, _, user, ticket in
            let intervals = try await support.attendance(ticket: ticket, user: user)
            return JSONResponse.make([
                "ticketId": .string(ticket), "intervals": .array(intervals.map(\.json)),
            ] as JSONValue)
        }

        // Open tickets with a customer waiting and no agent present, longest wait first (agents and admins).
        router.get("/api/support/queue") { request, _ in
            let user = try await authenticator.authenticate(request)
            let tickets = try await support.queue(user: user)
            return JSONResponse.make(["tickets": JSONValue.array(tickets.map(\.json))])
        }
        router.get("/api/admin/agents") { request, _ in
            let user = try await authenticator.authenticate(request)
            let agents = try await support.agents(by: user)
            return JSONResponse.make(["agents": JSONValue.array(agents.map(JSONValue.string))])
        }
        router.put("/api/admin/agents/:username") { request, context in
            let user = try await authenticator.authenticate(request)
            let name = try agentName(context)
            try await support.addAgent(name, by: user)
            return JSONResponse.make(["username": .string(name), "agent": true] as JSONValue)
        }
        router.delete("/api/admin/agents/:username") { request, context in
            let user = try await authenticator.authenticate(request)
            let name = try agentName(context)
            let was = try await support.removeAgent(name, by: user)
            guard was else { throw APIError(.notFound, "Agent not found") }
            return JSONResponse.make(["success": true])
        }
    }

    func agentName(_ context: AppRequestContext) throws -> String {
        guard let raw = context.pathParameter("username"), let name = Validation.username(raw) else {
            throw APIError.badRequest("Invalid username")
        }
        return name
    }

    typealias Handler = @Sendable (Request, AppRequestContext, String, String) async throws -> Response

    /// An authenticated ticket route: auth first, then the ticket id, then the handler, domain errors mapped.
    private func post(_ path: String, _ router: Router<AppRequestContext>, _ handler: @escaping Handler) {
        router.post(RouterPath(path)) { request, context in try await run(request, context, handler) }
    }

    private func get(_ path: String, _ router: Router<AppRequestContext>, _ handler: @escaping Handler) {
        router.get(RouterPath(path)) { request, context in try await run(request, context, handler) }
    }

    private func run(_ request: Request, _ context: AppRequestContext, _ handler: Handler) async throws -> Response {
        let user = try await authenticator.authenticate(request)
        let ticket = context.pathParameter("ticketId") ?? ""
        _ = try SupportService.roomID(ticket: ticket)
        return try await handler(request, context, user, ticket)
    }
}
