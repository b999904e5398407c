import Logging
import Foundation
import HTTPTypes
import Hummingbird
import PresenceCore

/// `POST /api/auth/register`, `/api/auth/login`, `/api/auth/logout`.
///
/// Registration is limited per client address (`REGISTER_RATE_LIMIT` per hour), and the names of admins
/// (`ADMIN_USERS`) and of the AI are reserved: admin accounts come from `ADMIN_PASSWORD`, never from whoever
/// registers a name first.
///
/// Login attempts, right or wrong, are limited per client address (`LOGIN_ADDRESS_RATE_LIMIT`), per username and
/// address pair (`LOGIN_RATE_LIMIT`), and per username from addresses that never signed in as that user
/// (`LOGIN_USER_RATE_LIMIT`), all per 60 s: past one, 429 with `Retry-After`, and the password is not even checked,
/// so guessing costs the guesser and not our bcrypt pool. A third party cannot lock the owner out: their guesses
/// count against their own addresses, and the owner's known addresses are never held to the per-username limit.
struct AuthController {
    /// The limits of the auth routes.
    struct Limiters: Sendable {
        var register: SlidingWindowLimiter
        var loginPair: SlidingWindowLimiter
        var loginUser: SlidingWindowLimiter
        var loginAddress: SlidingWindowLimiter
    }

    let users: UserDirectory
    let tokens: TokenStore
    let authenticator: Authenticator
    let limiters: Limiters
    let trustedProxies: [ClientAddress.Block]
    /// Admin names (reserved) and the password their accounts are created with when missing.
    let admins: Set<String>
    let adminPassword: String?

    func addRoutes(to router: Router<AppRequestContext>) {
        router.post("/api/auth/register") { request, context in
            let body = try await JSONBody.read(request, context: context)
            let (username, password) = try credentials(body)
            guard username != RyoService.username, !admins.contains(username) else {
                throw APIError(.forbidden, "Username reserved")
            }
            try await check(limiters.register, clientAddress(request, context))
            try await users.register(username: username, password: password)
            let token = try await tokens.issue(for: username)
            context.logger.info("User registered", metadata: ["user": "\(username)"])
            return JSONResponse.make(["username": username, "token": token], status: .created)
        }
        router.post("/api/auth/login") { request, context in
            let body = try await JSONBody.read(request, context: context)
            let rawName = try body.string("username")
            let password = try body.string("password")
            let address = clientAddress(request, context)
            try await check(limiters.loginAddress, address)
            let validName = Validation.username(rawName)
            if let validName {
                try await check(limiters.loginPair, "\(validName)|\(address)")
                if try await !users.isKnownAddress(address, of: validName) {
                    try await check(limiters.loginUser, validName)
                }
            }
            guard let username = validName, try await verify(username, password) else {
                throw APIError(.unauthorized, "Invalid credentials")
            }
            let token = try await tokens.issue(for: username)
            try? await users.touch(username)
            try? await users.rememberAddress(address, of: username)
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

    /// Checks the password; an admin account that does not exist yet is created first from `ADMIN_PASSWORD` (start-up
    /// does the same; this covers a login that comes before it).
    private func verify(_ username: String, _ password: String) async throws -> Bool {
        if admins.contains(username), let adminPassword, password == adminPassword {
            do {
                try await users.register(username: username, password: adminPassword)
            } catch DomainError.conflict(_) {
                // Exists already: its own password decides.
            }
        }
        return try await users.verify(username: username, password: password)
    }

    private func check(_ limiter: SlidingWindowLimiter, _ subject: String) async throws {
        let decision = try await limiter.check(subject)
        guard decision.allowed else { throw DomainError.rateLimited(decision) }
    }

    private func clientAddress(_ request: Request, _ context: AppRequestContext) -> String {
        ClientAddress.resolve(
            peer: context.peerAddress, forwardedFor: request.headers[HTTPField.Name("X-Forwarded-For")!], trusted: trustedProxies
        )
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
