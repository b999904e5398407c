import HTTPTypes
import Logging
import Foundation
import Hummingbird
import PresenceCore

/// Who is calling: `Authorization: Bearer <token>` + `X-Username` (API clients), or ryOS's session cookie
/// `ryos_auth=<user>:<token>` (browsers), checked against the token store.
///
/// A request authenticated by the cookie alone that changes something (any method but GET, HEAD and OPTIONS) must
/// say where it comes from: an allowed `Origin`, or a `Referer` with an allowed origin (``OriginPolicy``); otherwise
/// 403 `{"error":"Unauthorized"}`. That is the CSRF rule: a cookie rides along on a foreign site's form post, the
/// headers never do.
public struct Authenticator: Sendable {
    let tokens: TokenStore
    let origins: OriginPolicy
    /// Admin rights: a configured admin not yet confirmed is checked against its account when it authenticates, so a
    /// worker whose start-up has not looked yet (or an account an operator marked since) is not left out.
    let admins: AdminRoster?
    let users: UserDirectory?

    public init(tokens: TokenStore, origins: OriginPolicy, admins: AdminRoster? = nil, users: UserDirectory? = nil) {
        self.tokens = tokens
        self.origins = origins
        self.admins = admins
        self.users = users
    }

    /// Who a request was authenticated as, with which token, and how.
    public struct Credentials: Sendable {
        public let user: String
        public let token: String
        /// The cookie alone authenticated the request (no `Authorization` / `X-Username`).
        public let viaCookie: Bool
    }

    /// Bearer values ryOS's client may send when it has no token of its own (the cookie carries it).
    static let placeholderTokens: Set<String> = ["null", "undefined", "__cookie_session__"]

    /// The authenticated username (lowercased), or the error the contract asks for: no credentials → 401
    /// "Authentication required"; one of the two headers and no cookie → 400; unknown, expired or another user's
    /// token → 401 "Invalid token"; a cookie-only write from a foreign or unnamed origin → 403.
    public func authenticate(_ request: Request) async throws -> String {
        try await credentials(request).user
    }

    /// Confirms a configured admin whose account the bootstrap made (see ``AdminRoster``).
    func confirmAdmin(_ user: String) async throws {
        guard let admins, let users, admins.configured.contains(user), !admins.isAdmin(user) else { return }
        if try await users.isBootstrapAdmin(user) { admins.confirm(user) }
    }

    /// ``authenticate(_:)`` with the token and how it came.
    public func credentials(_ request: Request) async throws -> Credentials {
        let authorization = request.headers[.authorization]
        let username = request.headers[HTTPField.Name("X-Username")!]
        let bearer = authorization.flatMap(Self.bearer).flatMap { Self.placeholderTokens.contains($0) ? nil : $0 }
        if let bearer, let username {
            guard let owner = try await tokens.user(for: bearer), owner == username.lowercased() else {
                throw APIError(.unauthorized, "Invalid token")
            }
            try await confirmAdmin(owner)
            return Credentials(user: owner, token: bearer, viaCookie: false)
        }
        if let cookie = SessionCookie.read(request) {
            guard let owner = try await tokens.user(for: cookie.token), owner == cookie.user else {
                throw APIError(.unauthorized, "Invalid token")
            }
            try checkOrigin(request)
            try await confirmAdmin(owner)
            return Credentials(user: owner, token: cookie.token, viaCookie: true)
        }
        switch (authorization, username) {
        case (nil, nil):
            throw APIError(.unauthorized, "Authentication required")
        case (_?, _?):
            throw APIError(.unauthorized, "Invalid token")
        default:
            throw APIError(.badRequest, "Both Authorization and X-Username headers are required")
        }
    }

    /// The username when the request carries credentials, `nil` when it carries none. Bad headers still fail; a bad
    /// cookie means anonymous, as ryOS treats it on optional routes.
    public func optionalUser(_ request: Request) async throws -> String? {
        let headers = request.headers[.authorization] != nil || request.headers[HTTPField.Name("X-Username")!] != nil
        if !headers {
            guard let cookie = SessionCookie.read(request) else { return nil }
            guard let owner = try await tokens.user(for: cookie.token), owner == cookie.user else { return nil }
            try checkOrigin(request)
            try await confirmAdmin(owner)
            return owner
        }
        return try await authenticate(request)
    }

    /// The CSRF rule of cookie sessions: a write must name an allowed origin.
    func checkOrigin(_ request: Request) throws {
        switch request.method {
        case .get, .head, .options: return
        default:
            guard let origin = OriginPolicy.requestOrigin(request), origins.allows(origin, host: request.head.authority) else {
                throw APIError(.forbidden, "Unauthorized")
            }
        }
    }

    /// The bearer token of the request, if any.
    public static func bearer(_ header: String) -> String? {
        // Byte-level: this runs on every authenticated request.
        var bytes = Substring(header).utf8[...]
        let scheme = "bearer".utf8
        guard bytes.count > scheme.count,
              zip(bytes.prefix(scheme.count), scheme).allSatisfy({ $0 | 0x20 == $1 }),
              bytes[bytes.index(bytes.startIndex, offsetBy: scheme.count)] == UInt8(ascii: " ") else { return nil }
        bytes = bytes.dropFirst(scheme.count)
        let blank: (UInt8) -> Bool = { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        guard let first = bytes.firstIndex(where: { !blank($0) }), let last = bytes.lastIndex(where: { !blank($0) }) else { return nil }
        return String(Substring(bytes[first...last]))
    }
}
