import PresenceRealtime
import Hummingbird
import Logging
import PresenceCore

/// `POST /api/realtime/ticket`: a single-use ticket (60 s) for ryOS's `local` realtime provider, which opens
/// `/ws?ticket=<ticket>` with it: the socket then acts as the ticket's user (private channels per ``ChannelAccess``).
/// At most `limiter.limit` tickets per user per window (429 beyond).
package struct RealtimeTicketController {
    package init(tickets: RealtimeTickets, limiter: SlidingWindowLimiter, authenticator: Authenticator) {
        self.tickets = tickets
        self.limiter = limiter
        self.authenticator = authenticator
    }

    let tickets: RealtimeTickets
    let limiter: SlidingWindowLimiter
    let authenticator: Authenticator

    package func addRoutes(to router: Router<AppRequestContext>) {
        router.post("/api/realtime/ticket") { request, context in
            let user = try await authenticator.authenticate(request)
            let decision = try await limiter.check(user)
            guard decision.allowed else { throw DomainError.rateLimited(decision) }
            do {
                return JSONResponse.make(["ticket": .string(try await tickets.issue(for: user))] as JSONValue)
            } catch {
                context.logger.error("Failed to issue realtime ticket", metadata: ["error": "\(error)"])
                throw APIError(.internalServerError, "Failed to issue realtime ticket")
            }
        }
    }
}
