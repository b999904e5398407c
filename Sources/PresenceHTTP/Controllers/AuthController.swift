import PresenceRealtime
import Logging
import Foundation
import HTTPTypes
import Hummingbird
import PresenceCore

/// `POST /api/auth/register`, `/api/auth/login`, `/api/auth/logout`, `/api/auth/logout-all`,
/// `/api/auth/token/verify` and `GET /api/auth/session`.
///
/// Each sign-in answers both faces: the token in the body (API clients send it back as `Authorization: Bearer` with
/// `X-Username`), and ryOS's session cookie (``SessionCookie``), which browsers send back by themselves.
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
package struct AuthController {
    package init(users: UserDirectory, tokens: TokenStore, authenticator: Authenticator, cookie: SessionCookie, limiters: Limiters, trustedProxies: [ClientAddress.Block], admins: AdminRoster, adminPassword: String?, realtime: RealtimeSignOut) {
        self.users = users
        self.tokens = tokens
        self.authenticator = authenticator
        self.cookie = cookie
        self.limiters = limiters
        self.trustedProxies = trustedProxies
        self.admins = admins
        self.adminPassword = adminPassword
        self.realtime = realtime
    }

    /// The limits of the auth routes.
    package struct Limiters: Sendable {
        package init(register: SlidingWindowLimiter, loginPair: SlidingWindowLimiter, loginUser: SlidingWindowLimiter, loginAddress: SlidingWindowLimiter) {
            self.register = register
            self.loginPair = loginPair
            self.loginUser = loginUser
            self.loginAddress = loginAddress
        }

        var register: SlidingWindowLimiter
        var loginPair: SlidingWindowLimiter
        var loginUser: SlidingWindowLimiter
        var loginAddress: SlidingWindowLimiter
    }

    let users: UserDirectory
    let tokens: TokenStore
    let authenticator: Authenticator
    let cookie: SessionCookie
    let limiters: Limiters
    let trustedProxies: [ClientAddress.Block]
    /// Admin names (reserved) and the password their accounts are created with when missing.
    let admins: AdminRoster
    let adminPassword: String?
    /// A logout ends the user's live subscriptions and sign-ins on every worker.
    let realtime: RealtimeSignOut

    package func addRoutes(to router: Router<AppRequestContext>) {
        router.post("/api/auth/register") { request, context in
            let body = try await JSONBody.read(request, context: context)
            let (username, password) = try credentials(body)
            guard username != RyoService.username, !admins.configured.contains(username) else {
                throw APIError(.forbidden, "Username reserved")
            }
            let address = clientAddress(request, context)
            try await check(limiters.register, address)
            do {
                try await users.register(username: username, password: password)
            } catch DomainError.conflict(let message) {
                // ryOS's register doubles as login: the name's own password signs in (with login's limits).
                try await checkLogin(username, address: address)
                guard try await users.verify(username: username, password: password) else {
                    throw DomainError.conflict(message)
                }
                return try await signIn(username, address: address, body: [:], status: .ok, user: true)
            }
            context.logger.info("User registered", metadata: ["user": "\(username)"])
            return try await signIn(username, address: address, body: [:], status: .created, user: true)
        }
        router.post("/api/auth/login") { request, context in
            let body = try await JSONBody.read(request, context: context)
            let rawName = try body.string("username")
            let password = try body.string("password")
            let address = clientAddress(request, context)
            let validName = Validation.username(rawName)
            if let validName {
                try await checkLogin(validName, address: address)
            } else {
                try await check(limiters.loginAddress, address)
            }
            guard let username = validName, try await verify(username, password) else {
                throw APIError(.unauthorized, "Invalid credentials")
            }
            return try await signIn(username, address: address, body: [:], status: .ok, user: false)
        }
        router.post("/api/auth/token/verify") { request, context in
            let body = try await JSONBody.read(request, context: context)
            guard let rawName = try body.optionalString("username"), let token = try body.optionalString("token"),
                  !rawName.isEmpty, !token.isEmpty else {
                throw APIError.badRequest("Username and token are required")
            }
            // Guessing tokens costs like guessing passwords.
            try await check(limiters.loginAddress, clientAddress(request, context))
            guard let username = Validation.username(rawName), let owner = try await tokens.user(for: token), owner == username else {
                throw APIError(.unauthorized, "Invalid authentication token")
            }
            return JSONResponse.make(
                ["valid": true, "username": .string(username), "message": "Token is valid"],
                headers: [.setCookie: cookie.set(user: username, token: token)]
            )
        }
        router.get("/api/auth/session") { request, _ in
            // ryOS calls this on every page load: a valid cookie is sent again with a fresh Max-Age; a stale one is
            // cleared. Never an error for missing or bad credentials.
            guard let session = SessionCookie.read(request) else {
                return JSONResponse.make(["authenticated": false])
            }
            guard let owner = try await tokens.user(for: session.token), owner == session.user else {
                return JSONResponse.make(["authenticated": false], headers: [.setCookie: cookie.clear])
            }
            return JSONResponse.make(
                ["authenticated": true, "username": .string(owner), "expired": false],
                headers: [.setCookie: cookie.set(user: owner, token: session.token)]
            )
        }
        router.post("/api/auth/logout") { request, _ in
            let session = try await authenticator.credentials(request)
            try await tokens.revoke(session.token)
            await realtime.signOut(session.user)
            return JSONResponse.make(
                ["success": true, "message": "Logged out successfully"], headers: [.setCookie: cookie.clear]
            )
        }
        router.post("/api/auth/logout-all") { request, context in
            let session = try await authenticator.credentials(request)
            let count = try await tokens.revokeAll(of: session.user)
            await realtime.signOut(session.user)
            context.logger.info("Every session ended", metadata: ["user": "\(session.user)", "sessions": "\(count)"])
            return JSONResponse.make(
                ["success": true, "message": .string("Logged out from \(count) devices"), "deletedCount": .int(count)],
                headers: [.setCookie: cookie.clear]
            )
        }
    }

    /// Issues a token for `username` and answers with it in the body and in the session cookie. ryOS's register reads
    /// `user.username`; login reads `username`.
    private func signIn(_ username: String, address: String, body: [String: JSONValue], status: HTTPResponse.Status, user: Bool) async throws -> Response {
        let token = try await tokens.issue(for: username)
        try? await users.touch(username)
        try? await users.rememberAddress(address, of: username)
        var object = body
        object["username"] = .string(username)
        object["token"] = .string(token)
        if user { object["user"] = ["username": .string(username)] }
        return JSONResponse.make(.object(object), status: status, headers: [.setCookie: cookie.set(user: username, token: token)])
    }

    /// The login limits, before any password is checked: per address, per (name, address), and per name from
    /// addresses that never signed in as it.
    private func checkLogin(_ username: String, address: String) async throws {
        try await check(limiters.loginAddress, address)
        try await check(limiters.loginPair, "\(username)|\(address)")
        if try await !users.isKnownAddress(address, of: username) {
            try await check(limiters.loginUser, username)
        }
    }

    /// Checks the password; an admin account that does not exist yet is created first from `ADMIN_PASSWORD` (start-up
    /// does the same; this covers a login that comes before it).
    private func verify(_ username: String, _ password: String) async throws -> Bool {
        if admins.configured.contains(username), let adminPassword, password == adminPassword,
           try await users.registerBootstrapAdmin(username: username, password: adminPassword) {
            admins.confirm(username)
        }
        // An existing account: its own password decides.
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
