import PresenceCore
import Crypto
import Foundation
import HummingbirdBcrypt
import NIOPosix

/// bcrypt over a SHA-256 digest of the password, run on NIO's thread pool so no event loop or cooperative thread
/// blocks on it.
///
/// bcrypt reads at most 72 bytes, so a longer password (the API allows 128 characters, up to 512 UTF-8 bytes) would
/// match any other with the same first 72 bytes. Hashes are therefore `sha256$<bcrypt of base64(SHA-256(password))>`.
/// A stored hash without that prefix is plain bcrypt (written before the prefix existed, or seeded by tools) and
/// still verifies.
public struct BcryptPasswordHasher: PasswordHashing {
    /// The bcrypt cost (work factor): 2^cost rounds.
    public let cost: UInt8
    let pool: NIOThreadPool
    static let prefix = "sha256$"

    public init(cost: UInt8 = 10, pool: NIOThreadPool = .singleton) {
        self.cost = cost
        self.pool = pool
    }

    public func hash(_ password: String) async throws -> String {
        let cost = self.cost
        let digest = Self.digest(password)
        return try await pool.runIfActive { Self.prefix + Bcrypt.hash(digest, cost: cost) }
    }

    public func verify(_ password: String, hash: String) async throws -> Bool {
        if hash.hasPrefix(Self.prefix) {
            let digest = Self.digest(password)
            let bcrypt = String(hash.dropFirst(Self.prefix.count))
            return try await pool.runIfActive { Bcrypt.verify(digest, hash: bcrypt) }
        }
        return try await pool.runIfActive { Bcrypt.verify(password, hash: hash) }
    }

    public func makeDecoyHash() -> String {
        Bcrypt.hash("decoy-\(UInt64.random(in: 0 ... .max))", cost: cost)
    }

    /// 44 ASCII characters: within bcrypt's 72 bytes, and no NUL byte to cut it short.
    static func digest(_ password: String) -> String {
        Data(SHA256.hash(data: Array(password.utf8))).base64EncodedString()
    }
}
