import Crypto
import Foundation
import PresenceCore

/// Pusher's signatures: HMAC-SHA256 with the app secret, hex, compared in constant time.
public struct PusherSigner: Sendable {
    let key: String
    let secret: String

    public init(key: String, secret: String) {
        self.key = key
        self.secret = secret
    }

    /// Hex HMAC-SHA256 of `text`.
    public func hmac(_ text: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return Hex.encode(code)
    }

    /// `<key>:<hmac("<socket_id>:<channel>[:<channel_data>]")>`.
    public func channelAuth(socketID: String, channel: String, channelData: String? = nil) -> String {
        var subject = "\(socketID):\(channel)"
        if let channelData { subject += ":\(channelData)" }
        return "\(key):\(hmac(subject))"
    }

    /// `<key>:<hmac("<socket_id>::user::<user_data>")>`: a user's sign-in on one socket (Pusher's user authentication).
    public func userAuth(socketID: String, userData: String) -> String {
        "\(key):\(hmac("\(socketID)::user::\(userData)"))"
    }

    /// Whether a client's `auth` for `pusher:signin` is right (constant time).
    public func verifyUser(auth: String, socketID: String, userData: String) -> Bool {
        Self.constantTimeEqual(auth, userAuth(socketID: socketID, userData: userData))
    }

    /// Whether a client's `auth` for a subscription is right (constant time).
    public func verify(auth: String, socketID: String, channel: String, channelData: String?) -> Bool {
        Self.constantTimeEqual(auth, channelAuth(socketID: socketID, channel: channel, channelData: channelData))
    }

    package static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return diff == 0
    }

    /// Hex MD5 of a request body (`body_md5`).
    public static func md5(_ bytes: some Sequence<UInt8>) -> String {
        Hex.encode(Insecure.MD5.hash(data: Array(bytes)))
    }
}
