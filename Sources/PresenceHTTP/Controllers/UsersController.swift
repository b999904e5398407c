import PresenceRealtime
import HTTPTypes
import Logging
import Foundation
import Hummingbird
import PresenceCore

/// `GET /api/users?search=ali&limit=20`: prefix search, limited per client address.
package struct UsersController {
    package init(users: UserDirectory, limiter: SlidingWindowLimiter, trustedProxies: [ClientAddress.Block]) {
        self.users = users
        self.limiter = limiter
        self.trustedProxies = trustedProxies
    }

    let users: UserDirectory
    let limiter: SlidingWindowLimiter
    let trustedProxies: [ClientAddress.Block]

    package func addRoutes(to router: Router<AppRequestContext>) {
        router.get("/api/users") { request, context in
            let address = ClientAddress.resolve(
                peer: context.peerAddress,
                forwardedFor: request.headers[HTTPField.Name("X-Forwarded-For")!],
                trusted: trustedProxies
            )
            let decision = try await limiter.check(address)
            guard decision.allowed else { throw DomainError.rateLimited(decision) }
            let limit = try Query.int(request, "limit", default: 20, range: 1...50)
            let search = (request.uri.queryParameters.get("search") ?? "").trimmingCharacters(in: .whitespaces).lowercased()
            guard search.count >= 2, search.count <= 30, Validation.isUsernameAlphabet(search) else {
                return JSONResponse.make(["users": JSONValue.array([])])
            }
            let found = try await users.search(prefix: search, limit: limit)
            let list: [JSONValue] = found.map { ["username": .string($0.username), "lastActive": .int64($0.lastActive)] }
            return JSONResponse.make(["users": JSONValue.array(list)])
        }
    }
}
