import Foundation
import HTTPTypes
import Hummingbird

/// ryOS's session cookie, `ryos_auth=<username>:<token>`: set on sign-in (and refreshed by `GET /api/auth/session`),
/// read on every `/api` route, cleared on logout. `HttpOnly`, `Path=/api`, `SameSite=Lax`, and `Secure` when the
/// public origin is https, as ryOS sets it.
public struct SessionCookie: Sendable {
    public static let name = "ryos_auth"
    /// Seconds the browser keeps the cookie (the token's own sliding lifetime decides whether it still works).
    let maxAge: Int64
    let secure: Bool

    public init(maxAge: Duration, publicOrigin: String?) {
        self.maxAge = maxAge.components.seconds
        self.secure = publicOrigin?.lowercased().hasPrefix("https://") == true
    }

    /// The `Set-Cookie` value that signs `user` in with `token`.
    public func set(user: String, token: String) -> String {
        "\(Self.name)=\(user):\(token); HttpOnly; Path=/api; Max-Age=\(maxAge); SameSite=Lax" + (secure ? "; Secure" : "")
    }

    /// The `Set-Cookie` value that removes the cookie.
    public var clear: String {
        "\(Self.name)=; HttpOnly; Path=/api; Max-Age=0; SameSite=Lax" + (secure ? "; Secure" : "")
    }

    /// The (username, token) the request's cookie names, if it has a well-formed one. The username is lowercased.
    public static func read(_ request: Request) -> (user: String, token: String)? {
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let pair = part.drop { $0 == " " || $0 == "\t" }
                guard pair.hasPrefix(name + "=") else { continue }
                let value = String(pair.dropFirst(name.count + 1)).removingPercentEncoding ?? ""
                guard let colon = value.lastIndex(of: ":") else { return nil }
                let user = value[..<colon].lowercased(), token = String(value[value.index(after: colon)...])
                guard !user.isEmpty, !token.isEmpty else { return nil }
                return (user, token)
            }
        }
        return nil
    }
}
