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

    /// The receivers that want `name`.
    public func targets(for name: WebhookEvent.Name) -> [WebhookTarget] { targets.filter { $0.accepts(name) } }
}
