import Crypto

/// Signs Pusher HTTP API requests: `auth_key`, `auth_timestamp`, `auth_version=1.0`, `body_md5` (MD5 of the body) and
/// `auth_signature` (hex HMAC-SHA256 with the secret of "POST\n<path>\n<sorted query>").
struct PusherSigner: Sendable {
    let appID: String
    let key: String
    let secret: SymmetricKey

    init(appID: String, key: String, secret: String) {
        self.appID = appID
        self.key = key
        self.secret = SymmetricKey(data: Array(secret.utf8))
    }

    /// `/apps/<id>/events?<signed query>` for a POST of `body` at `timestamp` (seconds since the epoch).
    func eventsURI(body: [UInt8], timestamp: Int64) -> String {
        let path = "/apps/\(appID)/events"
        let query = "auth_key=\(key)&auth_timestamp=\(timestamp)&auth_version=1.0&body_md5="
            + Self.hex(Insecure.MD5.hash(data: body))
        let signature = HMAC<SHA256>.authenticationCode(for: Array("POST\n\(path)\n\(query)".utf8), using: secret)
        return "\(path)?\(query)&auth_signature=\(Self.hex(signature))"
    }

    private static let digits = Array("0123456789abcdef".utf8)

    /// Lower-case hex of a digest's bytes.
    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        var out = [UInt8]()
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
