/// How webhooks are sent (`WEBHOOK_*`).
public struct WebhookSettings: Sendable {
    /// `WEBHOOK_URLS`; none: webhooks are off and nothing is written to an outbox.
    public var targets: [WebhookTarget] = []
    /// `WEBHOOK_TIMEOUT_MS`: one POST's deadline; past it the batch is sent again.
    public var timeout: Duration = .seconds(5)
    /// `WEBHOOK_MAX_BACKOFF_MS`: retries start after 250 ms and double up to this.
    public var maxBackoff: Duration = .seconds(30)
    /// `WEBHOOK_BATCH_SIZE`: most events in one POST.
    public var batchSize: Int = 100
    /// `WEBHOOK_OUTBOX_MAX`: most undelivered events kept per receiver and outbox shard; past it the oldest go first,
    /// counted in `webhook_outbox_dropped`.
    public var outboxMax: Int = 100_000
    /// `WEBHOOK_OUTBOX_MAX_BYTES`: most memory an outbox shard of one receiver takes in Redis (what `MEMORY USAGE`
    /// says of its stream); past it the oldest events go first, counted in `webhook_outbox_dropped`. An event larger
    /// than ``maxEventBytes`` is never written (`webhook_events_oversized_total`).
    public var outboxMaxBytes: Int = 16 << 20
    /// `WEBHOOK_LEASE_MS`: how long a worker's claim on an outbox shard lasts without renewal: a dead worker's shards,
    /// with the events it had not had acknowledged, pass to another worker after this.
    public var lease: Duration = .seconds(10)
    /// How often an idle worker looks for new events.
    public var pollInterval: Duration = .milliseconds(200)

    /// How long a member of a private room or a ticket has to see a message before its `message_unseen` notice goes
    /// out (`UNSEEN_GRACE_MS`).
    public var unseenGrace: Duration = .milliseconds(30_000)

    public init() {}

    /// Whether some receiver wants `message_unseen`: only then are unseen notices kept (``UnseenMessages``).
    public var wantsUnseen: Bool { !targets(for: .messageUnseen).isEmpty }

    /// Whether any receiver is configured.
    public var enabled: Bool { !targets.isEmpty }

    /// How often a worker renews its leases (and takes free ones): a quarter of the lease, at most 2 s. A batch is sent
    /// with a lease renewed less than this long ago (``WebhookCourier``), and nothing renews it while the POST runs.
    public var leaseRenewInterval: Duration { min(lease / 4, .seconds(2)) }

    /// What a lease must still have left once a POST ended: the acknowledgement's round trip (`XACK` + `XDEL`), the
    /// renewal's own round trip, and timer slack.
    public static let acknowledgeHeadroom = Duration.milliseconds(250)

    /// The longest `WEBHOOK_TIMEOUT_MS` that fits the lease. A POST starts at most ``leaseRenewInterval`` after the
    /// lease was renewed, lasts at most the timeout, and must be acknowledged before the lease lapses; past that another
    /// worker may take the shard and send the same events again (`XAUTOCLAIM`): duplicated, and out of order. So
    /// `WEBHOOK_TIMEOUT_MS + min(WEBHOOK_LEASE_MS / 4, 2000) + 250 ≤ WEBHOOK_LEASE_MS`.
    public var longestTimeout: Duration { lease - leaseRenewInterval - Self.acknowledgeHeadroom }

    /// Why `WEBHOOK_TIMEOUT_MS` does not fit `WEBHOOK_LEASE_MS` (one line naming both), or `nil` when it does.
    public var timeoutProblem: String? {
        guard timeout > longestTimeout else { return nil }
        return "\(timeout.milliseconds) ms does not fit WEBHOOK_LEASE_MS=\(lease.milliseconds): a POST may start "
            + "\(leaseRenewInterval.milliseconds) ms after the lease was renewed (a quarter of WEBHOOK_LEASE_MS, at most 2000) and must "
            + "end \(Self.acknowledgeHeadroom.milliseconds) ms before it lapses, so WEBHOOK_TIMEOUT_MS may be at most "
            + "\(max(0, longestTimeout.milliseconds)) here; lower WEBHOOK_TIMEOUT_MS or raise WEBHOOK_LEASE_MS "
            + "(to at least \(Self.shortestLease(for: timeout).milliseconds))"
    }

    // MARK: - The outbox's byte bound
    //
    // Each stream keeps a count of what its entries take (`webhooks:{…}:<receiver>:bytes`, kept by `webhook_append.lua`,
    // the occupancy scripts and `webhook_ack.lua`): per entry ``storedSize(_:)`` of its JSON, an upper bound of what
    // Redis 7 keeps for it. The scripts drop the oldest entries while that count is over ``outboxEntryBudget``: the
    // bound less ``outboxReserve``, what Redis keeps besides the entries.

    /// The largest event written to an outbox, in bytes of JSON: an eighth of `WEBHOOK_OUTBOX_MAX_BYTES`, so one event
    /// never takes a shard's whole room (2 MiB with the default bound).
    public var maxEventBytes: Int { outboxMaxBytes / 8 }

    /// What Redis keeps for an outbox stream besides what its entries count for (in `MEMORY USAGE`'s terms): 16 KiB for
    /// the stream and its consumer group, a few consumers, the last listpack node (allocated at 4 KiB before it fills)
    /// and the first one (whose deleted entries take room until all of them are gone), plus 1.5 KiB for each entry of
    /// the pending list (in the group's and in its consumer's radix tree): events handed out and not yet acknowledged,
    /// at most `WEBHOOK_BATCH_SIZE` per shard (``WebhookCourier`` reads no more).
    public var outboxReserve: Int { 16384 + 1536 * batchSize }

    /// What the entries of one outbox stream may count for (``storedSize(_:)``): the bound less ``outboxReserve``.
    public var outboxEntryBudget: Int { outboxMaxBytes - outboxReserve }

    /// What an entry whose event is `length` bytes of JSON counts for (`outbox_cost` in the scripts): an upper bound of
    /// what `MEMORY USAGE` counts for it on Redis 7 with the default `stream-node-max-bytes` (4096) and
    /// `stream-node-max-entries` (100): the text and a quarter more for the allocator's size classes, 64 B of its own
    /// fields, and its share of its listpack node's key in the stream's radix tree (800 B, shared by the entries that
    /// fit in one node).
    public static func storedSize(_ length: Int) -> Int {
        let perNode = min(100, max(1, 4096 / (length + 16)))
        return length + length / 4 + 64 + (800 + perNode - 1) / perNode
    }

    /// Why `WEBHOOK_OUTBOX_MAX_BYTES` is too small beside `WEBHOOK_BATCH_SIZE` (one line naming both), or `nil`.
    public var outboxBytesProblem: String? {
        guard outboxReserve > outboxMaxBytes / 2 else { return nil }
        return "\(outboxMaxBytes) leaves too little room for events beside WEBHOOK_BATCH_SIZE=\(batchSize): Redis keeps "
            + "1.5 KiB for each event handed out and not yet acknowledged (up to WEBHOOK_BATCH_SIZE per shard) and 16 KiB per "
            + "stream, \(outboxReserve) B here, which may take at most half of WEBHOOK_OUTBOX_MAX_BYTES; raise it to at "
            + "least \(2 * outboxReserve) or lower WEBHOOK_BATCH_SIZE"
    }

    /// The shortest lease a timeout fits in.
    static func shortestLease(for timeout: Duration) -> Duration {
        // timeout + min(lease / 4, 2 s) + headroom <= lease: with the 2 s cap when that lease is 8 s or more.
        let capped = timeout + .seconds(2) + acknowledgeHeadroom
        if capped >= .seconds(8) { return capped }
        // Otherwise lease * 3/4 >= timeout + headroom, in whole milliseconds.
        let ms = (timeout + acknowledgeHeadroom).milliseconds
        return .milliseconds((ms * 4 + 2) / 3)
    }

    /// The receivers that want `name`.
    public func targets(for name: WebhookEvent.Name) -> [WebhookTarget] { targets.filter { $0.accepts(name) } }
}
