import HTTPTypes
import Logging
import Foundation
import Hummingbird
import PresenceCore

/// Checks `Authorization: Bearer <token>` + `X-Username` against the token store.
public struct Authenticator: Sendable {
    let tokens: TokenStore

    /// The authenticated username (lowercased), or the error the contract asks for: neither header → 401
    /// "Authentication required"; one of them → 400; unknown, expired or another user's token → 401 "Invalid token".
    public func authenticate(_ request: Request) async throws -> String {
        let authorization = request.headers[.authorization]
        let username = request.headers[HTTPField.Name("X-Username")!]
        switch (authorization, username) {
        case (nil, nil):
            throw APIError(.unauthorized, "Authentication required")
        case (nil, _), (_, nil):
            throw APIError(.badRequest, "Both Authorization and X-Username headers are required")
        case (let authorization?, let username?):
            guard let token = Self.bearer(authorization) else { throw APIError(.unauthorized, "Invalid token") }
            guard let owner = try await tokens.user(for: token), owner == username.lowercased() else {
                throw APIError(.unauthorized, "Invalid token")
            }
            return owner
        }
    }

    /// The username when the request carries credentials, `nil` when it carries none; bad credentials still fail.
    public func optionalUser(_ request: Request) async throws -> String? {
        if request.headers[.authorization] == nil && request.headers[HTTPField.Name("X-Username")!] == nil { return nil }
        return try await authenticate(request)
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
