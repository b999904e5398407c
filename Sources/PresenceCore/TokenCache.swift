import Synchronization

/// This worker's short memory of tokens it has just seen valid in Redis, keyed by their SHA-256.
///
/// Redis stays the only authority: an entry lives at most ``lifetime`` (1 s by default) after Redis last
/// confirmed the token, and a logout removes it at once here and, through the `tokens:revoked` pub/sub channel,
/// on every other worker. Sliding expiry still works: a token in use is looked up in Redis (and pushed back) at
/// least once per lifetime, far within its TTL.
public final class TokenCache: Sendable {
    private struct Entry {
        var user: String
        var until: ContinuousClock.Instant
    }

    private let entries = Mutex<[String: Entry]>([:])
    /// How long Redis's answer is trusted.
    public let lifetime: Duration
    private let capacity: Int

    public init(lifetime: Duration = .seconds(1), capacity: Int = 100_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// The user for a token digest Redis confirmed less than ``lifetime`` ago.
    public func user(forDigest digest: String) -> String? {
        let now = ContinuousClock.now
        return entries.withLock { entries in
            guard let entry = entries[digest] else { return nil }
            if entry.until > now { return entry.user }
            entries[digest] = nil
            return nil
        }
    }

    /// Records that Redis just confirmed `digest` belongs to `user`.
    public func remember(digest: String, user: String) {
        let until = ContinuousClock.now + lifetime
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[digest] = Entry(user: user, until: until)
        }
    }

    /// Forgets everything (revocations may have been missed while the pub/sub connection was down).
    public func removeAll() {
        entries.withLock { $0.removeAll() }
    }

    /// Forgets a revoked token's digest.
    public func forget(digest: String) {
        _ = entries.withLock { $0.removeValue(forKey: digest) }
    }
}
