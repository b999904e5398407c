import Logging
import Metrics

/// The `message_unseen` webhook's rules (#32): messages posted in private rooms and support tickets become pending
/// notices for the members who have not seen the room; seeing it (being present, subscribing to its channel on any
/// worker) within `UNSEEN_GRACE_MS` drops them; ``UnseenWatcher`` sends the rest, exactly once each.
///
/// On only when a webhook receiver wants `message_unseen` (`WEBHOOK_URLS`); the composition root builds none otherwise.
/// Counters: `message_unseen_sent_total` (per notice written to the outbox) and `message_unseen_suppressed_total`
/// (per notice dropped because its member saw the room in time).
public struct UnseenMessages: Sendable {
    public let storage: any UnseenStorage
    /// How long a member has to see a message before the notice goes out.
    public let grace: Duration
    let logger: Logger

    public static let sentCounter = "message_unseen_sent_total"
    public static let suppressedCounter = "message_unseen_suppressed_total"

    public init(storage: any UnseenStorage, grace: Duration, logger: Logger) {
        self.storage = storage
        self.grace = grace
        self.logger = logger
    }

    /// `message` was posted in `room`, whose members (in a ticket: its customer and assigned agent) are `members`.
    /// A failure is logged and counted (`message_unseen_unrecorded_total`): the message itself was posted.
    public func posted(room: String, message: ChatMessage, members: [String]) async {
        let others = members.filter { $0 != message.username }
        guard !others.isEmpty else { return }
        do {
            _ = try await storage.posted(room: room, message: message, members: others, grace: grace)
        } catch {
            Counter(label: "message_unseen_unrecorded_total").increment()
            logger.error("Unseen notices could not be recorded", metadata: ["room": "\(room)", "error": "\(error)"])
        }
    }

    /// Subscriptions to rooms' channels began: their users have seen those rooms.
    public func watch(_ watches: [RoomWatch], ttl: Duration) async {
        guard !watches.isEmpty else { return }
        do {
            let dropped = try await storage.watch(watches, ttl: ttl)
            if dropped > 0 { Counter(label: Self.suppressedCounter).increment(by: Int64(dropped)) }
        } catch {
            logger.debug("Room watch failed", metadata: ["error": "\(error)"])
        }
    }

    /// Subscriptions that ended.
    public func unwatch(_ watches: [RoomWatch]) async {
        guard !watches.isEmpty else { return }
        do {
            try await storage.unwatch(watches)
        } catch {
            logger.debug("Room unwatch failed; the entries will lapse", metadata: ["error": "\(error)"])
        }
    }

    /// A worker's periodic refresh of the subscriptions it holds.
    public func refresh(_ watches: [RoomWatch], ttl: Duration) async throws {
        guard !watches.isEmpty else { return }
        try await storage.refresh(watches, ttl: ttl)
    }
}
