/// Session tokens by digest (the token itself is never stored), with a sliding expiry.
public protocol TokenStorage: Sendable {
    /// Stores `digest` → `user` for `ttl`.
    func save(digest: String, user: String, ttl: Duration) async throws
    /// The user of `digest`, pushing its expiry back to `ttl`; `nil` when unknown or expired.
    func user(digest: String, ttl: Duration) async throws -> String?
    /// Deletes `digest` and tells every worker to forget it (their caches).
    func revoke(digest: String) async throws
    /// Deletes every token of `user` and tells every worker to forget them; returns how many were live.
    func revokeAll(user: String) async throws -> Int
}
