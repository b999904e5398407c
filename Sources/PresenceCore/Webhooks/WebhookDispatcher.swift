import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// Sends the webhook outbox to its receivers, on every worker: for each receiver, this worker sends the outbox shards
/// whose lease it holds (taken when free, renewed while it lives), one batch at a time, each until the receiver
/// acknowledged it, with exponential backoff between attempts. Events are acknowledged in the outbox only after the
/// receiver did, so delivery is at least once: a worker that dies mid-batch leaves its events pending, and the worker
/// that takes the lease over claims them (`XAUTOCLAIM`) and sends them before anything newer. One channel's events share
/// a shard, so each receiver gets them in order.
///
/// `webhook_outbox_length{target}` and `webhook_outbox_dropped{target}` (what a full outbox dropped, in the whole
/// cluster) are sampled every few seconds; `webhook_delivery_failures_total{target}` and
/// `webhook_events_delivered_total{target}` count this worker's attempts.
public struct WebhookDispatcher: Service {
    let storage: any WebhookOutboxStorage
    let sender: any WebhookSender
    let settings: WebhookSettings
    /// This worker's id, written into the leases it holds.
    let owner: String
    let logger: Logger

    public init(storage: any WebhookOutboxStorage, sender: any WebhookSender, settings: WebhookSettings, owner: String, logger: Logger) {
        self.storage = storage
        self.sender = sender
        self.settings = settings
        self.owner = owner
        self.logger = logger
    }

    public func run() async throws {
        guard settings.enabled else {
            try? await gracefulShutdown()
            await sender.shutdown()
            return
        }
        logger.info("Webhooks on", metadata: ["receivers": "\(settings.targets.map(\.id).joined(separator: ","))"])
        await withTaskGroup(of: Void.self) { group in
            for target in settings.targets {
                group.addTask { await WebhookCourier(target: target, dispatcher: self).run() }
            }
            group.addTask { await self.sampleBacklog() }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        // Every courier has stopped: nothing sends any more.
        await sender.shutdown()
    }

    /// Updates the outbox gauges every few seconds until cancelled.
    private func sampleBacklog() async {
        let gauges = settings.targets.map {
            (target: $0, length: Gauge(label: "webhook_outbox_length", dimensions: [("target", $0.id)]),
             dropped: Gauge(label: "webhook_outbox_dropped", dimensions: [("target", $0.id)]))
        }
        while !Task.isCancelled {
            for entry in gauges {
                guard let backlog = try? await storage.backlog(entry.target) else { continue }
                entry.length.record(backlog.waiting)
                entry.dropped.record(backlog.dropped)
            }
            try? await Task.sleep(for: .seconds(2))
        }
    }

    /// `{"time_ms": <now>, "events": [...]}`, the events as they were stored.
    static func body(_ entries: [WebhookEntry], now: Date = Date()) -> String {
        var body = "{\"time_ms\":\(Int64(now.timeIntervalSince1970 * 1000)),\"events\":["
        for (index, entry) in entries.enumerated() {
            if index > 0 { body += "," }
            body += entry.event
        }
        return body + "]}"
    }
}

/// One receiver's delivery on this worker: its leases, the shards whose pending events it must claim first, and the
/// batch loop. Lives in one task.
package final class WebhookCourier {
    static let firstBackoff = Duration.milliseconds(250)

    let target: WebhookTarget
    let dispatcher: WebhookDispatcher
    /// Shards whose lease this worker holds.
    private var held = Set<Int>()
    /// Held shards whose pending events (a dead worker's, or this one's after a failure) are still to be claimed:
    /// nothing newer is read from them before.
    private var unclaimed = Set<Int>()
    private var prepared = false
    private var leaseCheckedAt: ContinuousClock.Instant?
    private let failures: Counter
    private let delivered: Counter
    /// When the current run of failures began, for one warning per run (and a reminder every minute).
    private var failingSince: ContinuousClock.Instant?
    private var lastWarning: ContinuousClock.Instant?
    private var failedAttempts = 0
    /// The wait before the next attempt after a failed one.
    private var retryDelay = WebhookCourier.firstBackoff

    init(target: WebhookTarget, dispatcher: WebhookDispatcher) {
        self.target = target
        self.dispatcher = dispatcher
        self.failures = Counter(label: "webhook_delivery_failures_total", dimensions: [("target", target.id)])
        self.delivered = Counter(label: "webhook_events_delivered_total", dimensions: [("target", target.id)])
    }

    /// How often leases are renewed, and free ones (a stopped worker's) taken: a quarter of the lease, at most 2 s.
    /// A send starts with a lease renewed less than this long ago and runs unrenewed for up to `WEBHOOK_TIMEOUT_MS`,
    /// which is why a timeout that does not fit the rest of the lease is refused at start-up
    /// (``WebhookSettings/longestTimeout``).
    private var leaseCheckInterval: Duration { settings.leaseRenewInterval }
    private var storage: any WebhookOutboxStorage { dispatcher.storage }
    private var settings: WebhookSettings { dispatcher.settings }
    private var logger: Logger { dispatcher.logger }

    func run() async {
        var backoff = Self.firstBackoff
        while !Task.isCancelled {
            do {
                if try await round() {
                    backoff = Self.firstBackoff
                } else {
                    try await Task.sleep(for: settings.pollInterval)
                }
            } catch is CancellationError {
                break
            } catch {
                // Redis unreachable, or the outbox gone (a Redis restarted empty: NOGROUP). Whatever this worker had
                // read and not had acknowledged is pending: claim it again before anything newer.
                if "\(error)".contains("NOGROUP") { prepared = false }
                unclaimed = held
                leaseCheckedAt = nil
                logger.warning("Webhook outbox unavailable; retrying", metadata: ["target": "\(target.id)", "error": "\(error)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, settings.maxBackoff)
            }
        }
        // Stopping: hand the leases back so another worker goes on at once; anything unacknowledged is pending for it.
        if !held.isEmpty {
            try? await storage.release(target, owner: dispatcher.owner, shards: held)
        }
    }

    /// One batch: claimed pending events first, then new ones. Returns `false` when there was nothing to send.
    private func round() async throws -> Bool {
        if !prepared {
            try await storage.prepare(target)
            prepared = true
        }
        if leaseCheckedAt.map({ ContinuousClock.now - $0 >= leaseCheckInterval }) ?? true {
            try await renewLeases()
        }
        guard !held.isEmpty else { return false }
        var batch: [WebhookEntry] = []
        for shard in unclaimed.sorted() where batch.count < settings.batchSize {
            let asked = settings.batchSize - batch.count
            let claimed = try await storage.claimPending(target, shard: shard, owner: dispatcher.owner, count: asked)
            batch += claimed.entries
            if claimed.complete { unclaimed.remove(shard) }
        }
        if batch.count < settings.batchSize {
            // Up to what the batch still has room for, per shard: a shard never has more than WEBHOOK_BATCH_SIZE events
            // handed out and not acknowledged, which WEBHOOK_OUTBOX_MAX_BYTES leaves room for (outboxReserve).
            batch += try await storage.readNew(
                target, shards: held.subtracting(unclaimed).sorted(), owner: dispatcher.owner, count: settings.batchSize - batch.count
            )
        }
        guard !batch.isEmpty else { return false }
        var start = 0
        while start < batch.count {
            let end = min(start + settings.batchSize, batch.count)
            guard try await deliver(Array(batch[start..<end])) else {
                // Not taken. Everything read in this round stays pending for this worker, and the next round claims it
                // again from the outbox, oldest first: what a full outbox dropped meanwhile is not sent.
                unclaimed.formUnion(Set(batch.map(\.shard)).intersection(held))
                try await sleepRenewing(retryDelay)
                retryDelay = min(retryDelay * 2, settings.maxBackoff)
                return true
            }
            start = end
        }
        return true
    }

    private func renewLeases() async throws {
        let now = try await storage.lease(target, owner: dispatcher.owner, ttl: settings.lease)
        let gained = now.subtracting(held)
        if !gained.isEmpty {
            logger.debug("Webhook shards taken", metadata: ["target": "\(target.id)", "shards": "\(gained.sorted())"])
        }
        unclaimed.formUnion(gained)
        unclaimed.formIntersection(now)
        held = now
        leaseCheckedAt = .now
    }

    /// Sends `entries` once and, when the receiver took them, acknowledges them in the outbox. Returns `false` when it
    /// did not (the caller waits, 250 ms doubling up to `WEBHOOK_MAX_BACKOFF_MS`, and claims them again). Events of a
    /// shard whose lease this worker lost are left to the new holder.
    private func deliver(_ entries: [WebhookEntry]) async throws -> Bool {
        // A send may take up to WEBHOOK_TIMEOUT_MS: start it with a fresh lease, so no one else takes the shard meanwhile.
        if ContinuousClock.now - (leaseCheckedAt ?? .now) >= leaseCheckInterval { try await renewLeases() }
        let entries = entries.filter { held.contains($0.shard) }
        guard !entries.isEmpty else { return true }
        do {
            try await dispatcher.sender.send(WebhookDispatcher.body(entries), to: target)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            failures.increment()
            noteFailure(error)
            return false
        }
        try await storage.acknowledge(target, entries)
        delivered.increment(by: Int64(entries.count))
        retryDelay = Self.firstBackoff
        if let since = failingSince {
            logger.info("Webhook receiver answering again", metadata: [
                "target": "\(target.id)", "failed_attempts": "\(failedAttempts)",
                "down_ms": "\((ContinuousClock.now - since).milliseconds)",
            ])
            failingSince = nil
            failedAttempts = 0
        }
        return true
    }

    private func sleepRenewing(_ delay: Duration) async throws {
        var left = delay
        let step = leaseCheckInterval
        while left > .zero {
            let nap = min(left, step)
            try await Task.sleep(for: nap)
            left -= nap
            if ContinuousClock.now - (leaseCheckedAt ?? .now) >= step { try await renewLeases() }
        }
    }

    private func noteFailure(_ error: any Error) {
        let now = ContinuousClock.now
        failedAttempts += 1
        if failingSince == nil { failingSince = now }
        guard lastWarning.map({ now - $0 >= .seconds(60) }) ?? true else { return }
        lastWarning = now
        logger.warning("Webhook delivery failed; retrying with backoff", metadata: [
            "target": "\(target.id)", "error": "\(error)", "failed_attempts": "\(failedAttempts)",
        ])
    }
}
