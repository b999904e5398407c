import Crypto
import Foundation
import PresenceCore

/// A fast ``PasswordHashing`` for rules tests: SHA-256 with a marker, so a test never waits for bcrypt. (The real
/// `BcryptPasswordHasher` is exercised by the HTTP and system tests.)
struct PlainPasswordHasher: PasswordHashing {
    func hash(_ password: String) async throws -> String { Self.digest(password) }
    func verify(_ password: String, hash: String) async throws -> Bool { Self.digest(password) == hash }
    func makeDecoyHash() -> String { Self.digest("decoy-\(UInt64.random(in: 0 ... .max))") }

    static func digest(_ password: String) -> String {
        "plain$" + SHA256.hash(data: Array(password.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
