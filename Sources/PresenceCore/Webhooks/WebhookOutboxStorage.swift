/// One event waiting in an outbox for one receiver.
public struct WebhookEntry: Sendable, Equatable {
    /// The outbox shard (stream) it waits in: the spread bucket of its channel.
    public var shard: Int
    /// Its id there.
    public var id: String
    /// The event as the receiver gets it (JSON text).
    public var event: String

    public init(shard: Int, id: String, event: String) {
        self.shard = shard
        self.id = id
        self.event = event
    }
}

/// The webhook outbox: per receiver, shards of events in the order they happened (one channel's events all in one
/// shard), each sent by whichever worker holds its lease, and kept until the receiver acknowledged them.
public protocol WebhookOutboxStorage: Sendable {
    /// The number of shards per receiver.
    var shards: Int { get }
    /// Adds `events` to the outbox of every receiver that wants them, dropping the oldest of a full shard.
    func append(_ events: [WebhookEvent]) async throws
    /// Makes the receiver's shards ready to be read (idempotent).
    func prepare(_ target: WebhookTarget) async throws
    /// Takes or renews `owner`'s lease on every shard of `target` it can: returns the shards it holds now.
    func lease(_ target: WebhookTarget, owner: String, ttl: Duration) async throws -> Set<Int>
    /// Gives up `owner`'s leases on `shards`.
    func release(_ target: WebhookTarget, owner: String, shards: Set<Int>) async throws
    /// Up to `count` events of `shard` that were handed out and never acknowledged (by a worker that died, or by
    /// `owner` before a failure), oldest first, now handed to `owner`; `complete` when no older pending event is left
    /// beyond them (events a full outbox dropped meanwhile are skipped and forgotten).
    func claimPending(_ target: WebhookTarget, shard: Int, owner: String, count: Int) async throws -> (entries: [WebhookEntry], complete: Bool)
    /// Up to `count` events per shard never handed out yet, oldest first per shard, now handed to `owner`.
    func readNew(_ target: WebhookTarget, shards: [Int], owner: String, count: Int) async throws -> [WebhookEntry]
    /// Forgets events the receiver acknowledged.
    func acknowledge(_ target: WebhookTarget, _ entries: [WebhookEntry]) async throws
    /// Events waiting for `target` in all, and how many a full outbox dropped.
    func backlog(_ target: WebhookTarget) async throws -> (waiting: Int, dropped: Int)
}
