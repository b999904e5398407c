import Synchronization

/// A worker's short memory of facts it has just read from Redis, each trusted for ``lifetime`` and then read again.
///
/// Redis stays the only authority; a worker without an entry asks Redis and gets the same answer. Used for tokens
/// Redis just confirmed (1 s, revoked at once over `tokens:revoked`) and rooms just seen to be public (5 s; a public
/// room's type never changes and `presence_join.lua` still checks that it exists).
public final class ExpiringCache<Value: Sendable>: Sendable {
    private struct Entry {
        var value: Value
        var until: ContinuousClock.Instant
    }

    private let entries = Mutex<[String: Entry]>([:])
    /// How long an entry is trusted.
    public let lifetime: Duration
    private let capacity: Int

    /// - Parameters: lifetime: how long an entry is trusted; capacity: entries kept before the cache starts over.
    public init(lifetime: Duration, capacity: Int = 100_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// The value stored for `key` less than ``lifetime`` ago.
    public func value(for key: String) -> Value? {
        let now = ContinuousClock.now
        return entries.withLock { entries in
            guard let entry = entries[key] else { return nil }
            if entry.until > now { return entry.value }
            entries[key] = nil
            return nil
        }
    }

    /// Records what Redis just said about `key`.
    public func set(_ value: Value, for key: String) {
        let until = ContinuousClock.now + lifetime
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = Entry(value: value, until: until)
        }
    }

    /// Forgets `key` (revoked, deleted, or no longer true).
    public func remove(_ key: String) {
        _ = entries.withLock { $0.removeValue(forKey: key) }
    }

    /// Forgets everything (e.g. revocations may have been missed while the pub/sub connection was down).
    public func removeAll() {
        entries.withLock { $0.removeAll() }
    }
}
