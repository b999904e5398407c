import Logging
import Metrics
import ServiceLifecycle

/// Sends each `message_unseen` notice whose grace ran out, exactly once, whichever worker gets there (#32).
///
/// Every worker runs one. Each pass leases the rooms whose time has come in the unseen index, and for each runs one
/// step on the room's slot (``UnseenStorage/claim(_:lease:)``) that decides every due notice: dropped if its member
/// is present or subscribed now, else claimed for this worker. A claimed notice's webhook event is written to the
/// outbox by a step that records it sent (``UnseenStorage/send(_:)``), then the claim is forgotten. A worker that dies
/// between the claim and the forgetting leaves the claim to lapse; the next worker sends it again, and the record
/// turns the second write into nothing: exactly once, through the durable outbox, across workers and deaths.
public struct UnseenWatcher: Service {
    let unseen: UnseenMessages
    let interval: Duration
    let batchSize: Int
    let logger: Logger

    public init(unseen: UnseenMessages, interval: Duration? = nil, batchSize: Int = 200, logger: Logger) {
        self.unseen = unseen
        // A fifth of the grace, within 100 ms and 1 s: a notice goes out at most that long after its time.
        self.interval = interval ?? min(.seconds(1), max(.milliseconds(100), unseen.grace / 5))
        self.batchSize = batchSize
        self.logger = logger
    }

    /// How long a claim (of a room in the index, of a notice being sent) keeps other workers off.
    var lease: Duration { max(.seconds(5), interval * 4) }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    while try await watchOnce() >= batchSize {}
                } catch {
                    logger.debug("Unseen watch failed", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: interval)
            }
        }
    }

    /// One pass; returns how many rooms were taken.
    @discardableResult
    public func watchOnce() async throws -> Int {
        let storage = unseen.storage
        let due = try await storage.due(limit: batchSize, lease: lease)
        for room in due {
            do {
                let claim = try await storage.claim(room, lease: lease)
                if claim.suppressed > 0 { Counter(label: UnseenMessages.suppressedCounter).increment(by: Int64(claim.suppressed)) }
                for notice in claim.notices {
                    if try await storage.send(notice) {
                        Counter(label: UnseenMessages.sentCounter).increment()
                        logger.info("Message unseen", metadata: [
                            "room": "\(notice.room)", "user": "\(notice.user)", "count": "\(notice.count)",
                        ])
                    }
                    try await storage.done(notice)
                }
                try await storage.settle(room, next: claim.next)
            } catch {
                logger.warning("Unseen step failed; the room is looked at again after its lease", metadata: [
                    "room": "\(room.room)", "error": "\(error)",
                ])
            }
        }
        return due.count
    }
}
