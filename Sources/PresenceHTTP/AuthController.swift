import Logging
import Foundation
import HTTPTypes
import Hummingbird
import PresenceCore

/// `POST /api/auth/register`, `/api/auth/login`, `/api/auth/logout`.
///
/// Login attempts, right or wrong, are limited per client address and per username (sliding windows of 60 s,
/// `LOGIN_ADDRESS_RATE_LIMIT` and `LOGIN_RATE_LIMIT`): past either, 429 with `Retry-After`, and the password is not
/// even checked, so guessing costs the guesser and not our bcrypt pool.
struct AuthController {
    let users: UserDirectory
    let tokens: TokenStore
    let authenticator: Authenticator
    let loginLimiters: (user: SlidingWindowLimiter, address: SlidingWindowLimiter)
    let trustedProxies: [ClientAddress.Block]

    func addRoutes(to router: Router<AppRequestContext>) {
        router.post("/api/auth/register") { request, context in
            let body = try await JSONBody.read(request, context: context)
            let (username, password) = try credentials(body)
            try await domain { try await users.register(username: username, password: password) }
            let token = try await tokens.issue(for: username)
            context.logger.info("User registered", metadata: ["user": "\(username)"])
            return JSONResponse.make(["username": username, "token": token], status: .created)
        }
        router.post("/api/auth/login") { request, context in
            let body = try await JSONBody.read(request, context: context)
            let rawName = try body.string("username")
            let password = try body.string("password")
            let address = ClientAddress.resolve(
                peer: context.peerAddress,
                forwardedFor: request.headers[HTTPField.Name("X-Forwarded-For")!],
                trusted: trustedProxies
            )
            let byAddress = try await loginLimiters.address.check(address)
            guard byAddress.allowed else { throw DomainError.rateLimited(byAddress).apiError }
            let validName = Validation.username(rawName)
            if let validName {
                let byUser = try await loginLimiters.user.check(validName)
                guard byUser.allowed else { throw DomainError.rateLimited(byUser).apiError }
            }
            guard let username = validName, try await users.verify(username: username, password: password) else {
                throw APIError(.unauthorized, "Invalid credentials")
            }
            let token = try await tokens.issue(for: username)
            try? await users.touch(username)
            return JSONResponse.make(["username": username, "token": token])
        }
        router.post("/api/auth/logout") { request, _ in
            _ = try await authenticator.authenticate(request)
            if let header = request.headers[.authorization], let token = Authenticator.bearer(header) {
                try await tokens.revoke(token)
            }
            return JSONResponse.make(["success": true])
        }
    }

    func credentials(_ body: JSONBody) throws -> (String, String) {
        let rawName = try body.string("username")
        let password = try body.string("password")
        guard let username = Validation.username(rawName) else {
            throw APIError.badRequest(
                "Invalid username: 3-30 characters, a letter first, then letters or digits with single - or _ between them"
            )
        }
        guard (8...128).contains(password.unicodeScalars.count) else {
            throw APIError.badRequest("Password must be 8-128 characters")
        }
        return (username, password)
    }
}
