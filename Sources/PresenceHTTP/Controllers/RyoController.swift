import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PresenceCore

/// `POST /api/ai/ryo-reply`: Ryo answers a mention, behind the per-user `ai` sliding-window limiter.
///
/// Order of checks: JSON → auth → validation → rate limit → room → AI → store → broadcast. Every response carries
/// `RateLimit-Policy`, and `RateLimit` once the caller is known.
package struct RyoController {
    package init(ryo: RyoService, authenticator: Authenticator, stopDeadline: Latch) {
        self.ryo = ryo
        self.authenticator = authenticator
        self.stopDeadline = stopDeadline
    }

    let ryo: RyoService
    let authenticator: Authenticator
    /// A stopping worker cuts a reply still waiting for the model at its deadline (503) rather than outlive it.
    let stopDeadline: Latch

    package func addRoutes(to router: Router<AppRequestContext>) {
        router.post("/api/ai/ryo-reply") { request, context in
            var headers = HTTPFields()
            headers[HTTPField.Name("RateLimit-Policy")!] = ryo.limiter.policyHeader
            do {
                return try await handle(request, context, &headers)
            } catch let error as APIError {
                var error = error
                error.headers.append(contentsOf: headers)
                throw error
            }
        }
    }

    /// The largest request: ryOS's UI sends its whole desktop as `systemState` (open documents, lyrics), hundreds of
    /// KB; only the chat context is read from it.
    static let maxBodySize = 1024 * 1024

    func handle(_ request: Request, _ context: AppRequestContext, _ headers: inout HTTPFields) async throws -> Response {
        let body = try await JSONBody.read(request, context: context, limit: Self.maxBodySize)
        let user = try await authenticator.authenticate(request)
        let limiter = ryo.limiter
        do {
            guard let roomId = body.fields["roomId"]?.string, Validation.isRoomID(roomId) else {
                throw APIError.badRequest("Invalid room ID format")
            }
            guard let prompt = body.fields["prompt"]?.string,
                  !prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw APIError.badRequest("Prompt is required")
            }
            guard prompt.unicodeScalars.count <= 4000 else { throw APIError.badRequest("Prompt must be at most 4000 characters") }
            let chatContext = try Self.chatContext(body)
            let decision = try await limiter.check(user)
            headers[HTTPField.Name("RateLimit")!] = limiter.header(for: decision)
            guard decision.allowed else {
                headers[.retryAfter] = String(decision.retryAfterSeconds)
                throw APIError(.tooManyRequests, "Rate limit exceeded")
            }
            do {
                let ryo = self.ryo
                let message = try await stopDeadline.race {
                    try await ryo.reply(
                        user: user, roomId: roomId, prompt: prompt,
                        recentMessages: chatContext.recent, mentionedMessage: chatContext.mentioned
                    )
                }
                return JSONResponse.make(["message": message.json], status: .created, headers: headers)
            } catch let error as DomainError {
                throw error.apiError
            } catch is AIProviderError {
                throw APIError(.internalServerError, "Failed to generate reply")
            }
        } catch let error as APIError where headers[HTTPField.Name("RateLimit")!] == nil {
            // Rejected before the limiter: report the current state without counting this request.
            if let decision = try? await limiter.peek(user) {
                headers[HTTPField.Name("RateLimit")!] = limiter.header(for: decision)
            }
            throw error
        }
    }

    /// `systemState.chatRoomContext.{recentMessages, mentionedMessage}`, each optional and a string when present.
    static func chatContext(_ body: JSONBody) throws -> (recent: String?, mentioned: String?) {
        guard let state = body.fields["systemState"], !state.isNull else { return (nil, nil) }
        guard case .object(let stateObject) = state else { throw APIError.badRequest("Field 'systemState' must be an object") }
        guard let context = stateObject["chatRoomContext"], !context.isNull else { return (nil, nil) }
        guard case .object(let contextObject) = context else {
            throw APIError.badRequest("Field 'systemState.chatRoomContext' must be an object")
        }
        func text(_ name: String) throws -> String? {
            guard let value = contextObject[name], !value.isNull else { return nil }
            guard let string = value.string else {
                throw APIError.badRequest("Field 'systemState.chatRoomContext.\(name)' must be a string")
            }
            return string
        }
        let mentioned = try text("mentionedMessage")
        guard (mentioned?.count ?? 0) <= 4000 else {
            throw APIError.badRequest("Field 'systemState.chatRoomContext.mentionedMessage' must be at most 4000 characters")
        }
        return (try text("recentMessages"), mentioned)
    }
}
