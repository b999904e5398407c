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
    /// counted in `webhook_events_dropped_total`.
    public var outboxMax: Int = 100_000
    /// `WEBHOOK_LEASE_MS`: how long a worker's claim on an outbox shard lasts without renewal: a dead worker's shards,
    /// with the events it had not had acknowledged, pass to another worker after this.
    public var lease: Duration = .seconds(10)
    /// How often an idle worker looks for new events.
    public var pollInterval: Duration = .milliseconds(200)

    public init() {}

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
