import Crypto
import Foundation

/// Session tokens: 32 random bytes, hex, handed to the client once. The ``TokenStorage`` keeps only their SHA-256
/// with a sliding expiry: each use pushes it back by the TTL.
public struct TokenStore: Sendable {
    let storage: any TokenStorage
    public let ttl: Duration
    /// Users of token digests Redis confirmed in the last second. A token in use is still looked up in Redis (and
    /// its sliding expiry pushed back) at least once a second; a logout removes it here and, through
    /// ``RedisKeys/tokensRevoked``, on every other worker.
    public let cache: ExpiringCache<String>

    public init(storage: any TokenStorage, ttl: Duration, cache: ExpiringCache<String> = ExpiringCache(lifetime: .seconds(1))) {
        self.storage = storage
        self.ttl = ttl
        self.cache = cache
    }

    /// Issues a new token for `user`.
    public func issue(for user: String) async throws -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let token = Hex.encode(bytes)
        try await storage.save(digest: Self.digest(token), user: user, ttl: ttl)
        return token
    }

    /// The user a token belongs to, refreshing its expiry; `nil` for an unknown or expired token.
    public func user(for token: String) async throws -> String? {
        guard token.utf8.count == 64, token.utf8.allSatisfy(Self.isHexDigit) else { return nil }
        let digest = Self.digest(token)
        if let user = cache.value(for: digest) { return user }
        guard let user = try await storage.user(digest: digest, ttl: ttl) else { return nil }
        cache.set(user, for: digest)
        return user
    }

    /// Revokes a token at once, for every worker: deleted from storage, forgotten here, and announced so the other
    /// workers forget it too.
    public func revoke(_ token: String) async throws {
        let digest = Self.digest(token)
        cache.remove(digest)
        try await storage.revoke(digest: digest)
    }

    /// Revokes every token of `user` at once, for every worker; returns how many were live.
    public func revokeAll(of user: String) async throws -> Int {
        cache.removeAll()
        return try await storage.revokeAll(user: user)
    }

    static func digest(_ token: String) -> String {
        Hex.encode(SHA256.hash(data: Array(token.utf8)))
    }

    static func isHexDigit(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "f"))
    }
}
