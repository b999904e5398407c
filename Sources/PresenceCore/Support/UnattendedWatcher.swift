import Logging
import Metrics
import ServiceLifecycle

/// Sends each unattended ticket's notice once per episode, whichever worker gets there (#32).
///
/// Every worker runs one, as it runs a ``PresenceSweeper``. Each pass leases the tickets whose time in the waiting
/// index has come (in Redis the 16 `support:waiting:{…}` sorted sets, on Redis's clock), and for each runs one step on
/// the ticket's slot that marks the current episode notified when it has lasted `SUPPORT_UNATTENDED_AFTER`: only the
/// step that flips it answers ``WaitingAnswer/Status/notify``, so only one worker sends `ticket-unattended` (on the
/// ticket's channel and `private-support-queue`) and appends the `ticket_unattended` webhook to the outbox.
///
/// "Exactly once" holds for the flip: a worker that dies between the flip and its publish loses that episode's notice
/// (at most once, never twice), as the sweeper loses an announcement in the same case; the queue still shows the ticket
/// as unattended. It also publishes `ticket-attended` when it finds an episode an agent's arrival ended and no worker
/// reported (its worker died first).
///
/// Every few passes it reads the queue for two gauges: `support_tickets_unattended` (tickets whose notice went out and
/// whose customer still waits) and `support_longest_wait_seconds`.
public struct UnattendedWatcher: Service {
    let support: SupportService
    let storage: any SupportWaitingStorage
    let webhooks: (any WebhookOutboxStorage)?
    let interval: Duration
    let batchSize: Int
    let logger: Logger

    public init(
        support: SupportService, storage: any SupportWaitingStorage, webhooks: (any WebhookOutboxStorage)?,
        interval: Duration, batchSize: Int = 200, logger: Logger
    ) {
        self.support = support
        self.storage = storage
        self.webhooks = webhooks
        self.interval = interval
        self.batchSize = batchSize
        self.logger = logger
    }

    var lease: Duration { max(.seconds(5), interval * 2) }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var pass = 0
            while !Task.isCancelled {
                do {
                    while try await watchOnce() >= batchSize {}
                    if pass % 5 == 0 { try await measure() }
                } catch {
                    logger.debug("Unattended watch failed", metadata: ["error": "\(error)"])
                }
                pass += 1
                try await Task.sleep(for: interval)
            }
        }
    }

    /// One pass; returns how many tickets were taken.
    @discardableResult
    public func watchOnce() async throws -> Int {
        let due = try await storage.due(limit: batchSize, lease: lease)
        for ticket in due {
            do {
                let answer = try await storage.notify(ticket, after: support.settings.unattendedAfter)
                if answer.status == .notify {
                    logger.info("Ticket unattended", metadata: ["room": "\(ticket.room)", "waitMs": "\(answer.waitMs)"])
                    Counter(label: "support_tickets_unattended_total").increment()
                    await support.announce(waiting: answer, room: ticket.room)
                    if let webhooks {
                        try await webhooks.append([WebhookEvent(
                            .ticketUnattended, channel: "private-room-\(ticket.room)",
                            fields: SupportService.unattendedData(room: ticket.room, answer)
                        )])
                    }
                } else if answer.status == .attended {
                    await support.announce(waiting: answer, room: ticket.room)
                }
            } catch {
                logger.warning("Unattended step failed", metadata: ["room": "\(ticket.room)", "error": "\(error)"])
            }
        }
        return due.count
    }

    /// Sets the gauges from the queue.
    func measure() async throws {
        let queue = SupportService.ordered(queue: try await storage.queue())
        Gauge(label: "support_tickets_unattended").record(queue.filter(\.answer.notified).count)
        Gauge(label: "support_longest_wait_seconds").record(Double(queue.first?.answer.waitMs ?? 0) / 1000)
    }
}
