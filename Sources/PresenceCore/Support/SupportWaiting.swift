import Logging

/// A support ticket's waiting episode as one step of `support_waiting.lua` left it (#32, unattended tickets).
///
/// A ticket is *unattended* while it is open, a member with the role `customer` is present and no member with the role
/// `agent` is (observers do not count; admins join as agents). The episode starts when that begins to hold and ends
/// when it stops; its notice (`ticket-unattended`, the `ticket_unattended` webhook) goes out once, when it has lasted
/// `SUPPORT_UNATTENDED_AFTER`.
public struct WaitingAnswer: Sendable, Equatable {
    public enum Status: String, Sendable {
        /// No episode (and none started).
        case none
        /// An episode started with this step.
        case started
        /// An episode goes on (``WaitingAnswer/notified`` says whether its notice went out).
        case waiting
        /// This step marked the episode notified: its notice is this caller's to send (once per episode).
        case notify
        /// The episode ended with this step because an agent is present: send `ticket-attended`.
        case attended
        /// The episode ended with this step for another reason (the customer left or expired, the ticket closed).
        case ended
    }

    public var status: Status
    /// When the episode started (ms, Redis's clock); 0 with ``Status/none``.
    public var since: Int64
    /// How long the customer has waited (or waited, for an ended episode), ms.
    public var waitMs: Int64
    public var notified: Bool
    /// The ticket's customer and assigned agent, when it has them.
    public var customer: String?
    public var assignedAgentId: String?
    /// Redis's clock at the step (ms).
    public var now: Int64

    public init(status: Status, since: Int64, waitMs: Int64, notified: Bool, customer: String?, assignedAgentId: String?, now: Int64) {
        self.status = status
        self.since = since
        self.waitMs = waitMs
        self.notified = notified
        self.customer = customer
        self.assignedAgentId = assignedAgentId
        self.now = now
    }
}

/// A ticket taken from the waiting index by the watcher, leased until `leasedUntil` (ms).
public typealias DueWaiting = LeasedRoom

/// Waiting episodes and their index. In Redis: `room:{ticket_<id>}:waiting` in the ticket's slot and the index
/// `support:waiting:{<tag>}` spread over 16 buckets (ticket → when to look at it next).
public protocol SupportWaitingStorage: Sendable {
    /// After a presence change of ticket room `room`: registers the ticket in the index (before the step, so a worker
    /// that dies after it leaves an entry the watcher checks), decides the episode (starts or ends it) and keeps the
    /// index's time for it.
    func sync(room: String, after: Duration) async throws -> WaitingAnswer
    /// Before a presence change of ticket room `room`: the ticket is in the index at now + `after` at the latest, so a
    /// worker that dies between the change and its ``sync(room:after:)`` leaves an entry the watcher looks at (its step
    /// starts or ends the episode from the ticket's state then: the notice comes late, it is not lost).
    func register(room: String, after: Duration) async throws
    /// Tickets whose time in the index has come, at most `limit` per bucket, each leased for `lease`.
    func due(limit: Int, lease: Duration) async throws -> [DueWaiting]
    /// The watcher's step for one due ticket: decides the episode and marks it notified when its time has come (the
    /// one caller that gets ``WaitingAnswer/Status/notify`` sends the notice), then settles its index entry (next time,
    /// or gone when there is no episode) unless someone changed the entry since it was leased.
    func notify(_ due: DueWaiting, after: Duration) async throws -> WaitingAnswer
    /// Every ticket with a customer waiting now (rooms and their episodes), in no order; changes nothing.
    func queue() async throws -> [(room: String, answer: WaitingAnswer)]
}

/// One line of `GET /api/support/queue`.
public struct QueuedTicket: Sendable, Equatable {
    public var ticketId: String
    public var answer: WaitingAnswer

    public init(ticketId: String, answer: WaitingAnswer) {
        self.ticketId = ticketId
        self.answer = answer
    }

    /// `{ticketId, customer, waitingSinceMs, waitMs, assignedAgentId, unattended}`.
    public var json: JSONValue {
        [
            "ticketId": .string(ticketId), "customer": .optional(answer.customer),
            "waitingSinceMs": .int64(answer.since), "waitMs": .int64(answer.waitMs),
            "assignedAgentId": .optional(answer.assignedAgentId), "unattended": .bool(answer.notified),
        ]
    }
}

extension SupportService {
    /// The agents' channel of unattended tickets (agents and admins may subscribe).
    public static let queueChannel = "private-support-queue"

    /// The ticket id of ticket room `room` (`ticket_<id>`).
    static func ticketID(room: String) -> String {
        room.hasPrefix("ticket_") ? String(room.dropFirst("ticket_".count)) : room
    }

    /// `ticket-unattended`'s data (and the webhook's fields).
    static func unattendedData(room: String, _ answer: WaitingAnswer) -> [String: JSONValue] {
        [
            "ticketId": .string(ticketID(room: room)), "customer": .optional(answer.customer),
            "waitingSinceMs": .int64(answer.since), "waitMs": .int64(answer.waitMs),
            "assignedAgentId": .optional(answer.assignedAgentId),
        ]
    }

    /// Publishes what a waiting step asks for: `ticket-attended` after ``WaitingAnswer/Status/attended``,
    /// `ticket-unattended` after ``WaitingAnswer/Status/notify`` (on the ticket's channel and ``queueChannel``).
    public func announce(waiting answer: WaitingAnswer, room: String) async {
        let channel = "private-room-\(room)"
        switch answer.status {
        case .attended:
            let data: JSONValue = [
                "ticketId": .string(Self.ticketID(room: room)), "waitingSinceMs": .int64(answer.since),
                "waitMs": .int64(answer.waitMs), "wasUnattended": .bool(answer.notified),
            ]
            await broadcaster.publish([
                BroadcastEvent(.ticketAttended, channel: channel, data: data),
                BroadcastEvent(.ticketAttended, channel: Self.queueChannel, data: data),
            ])
        case .notify:
            let data = JSONValue.object(Self.unattendedData(room: room, answer))
            await broadcaster.publish([
                BroadcastEvent(.ticketUnattended, channel: channel, data: data),
                BroadcastEvent(.ticketUnattended, channel: Self.queueChannel, data: data),
            ])
        default:
            break
        }
    }

    /// After a presence change in ticket room `room`: the episode starts or ends (see ``SupportWaitingStorage/sync(room:after:)``)
    /// and `ticket-attended` goes out when an agent's arrival ended it. A failure is logged: the watcher's next look
    /// at the ticket, or the next change, decides it again from the ticket's state.
    func syncWaiting(room: String) async {
        guard let waiting else { return }
        do {
            let answer = try await waiting.sync(room: room, after: settings.unattendedAfter)
            await announce(waiting: answer, room: room)
        } catch {
            logger.warning("Waiting step failed", metadata: ["room": "\(room)", "error": "\(error)"])
        }
    }

    /// Before a presence change in ticket room `room` (``SupportWaitingStorage/register(room:after:)``). A failure is
    /// logged: the change goes ahead, and its own step registers the ticket too.
    func registerWaiting(room: String) async {
        guard let waiting else { return }
        do {
            try await waiting.register(room: room, after: settings.unattendedAfter)
        } catch {
            logger.warning("Waiting registration failed", metadata: ["room": "\(room)", "error": "\(error)"])
        }
    }

    /// `GET /api/support/queue` (agents and admins): open tickets with a customer waiting, longest wait first.
    public func queue(user: String) async throws -> [QueuedTicket] {
        guard try await isAgent(user) else { throw DomainError.forbidden("Forbidden") }
        guard let waiting else { return [] }
        return Self.ordered(queue: try await waiting.queue())
    }

    static func ordered(queue: [(room: String, answer: WaitingAnswer)]) -> [QueuedTicket] {
        queue.filter { $0.answer.status == .waiting }
            .sorted { ($0.answer.since, $0.room) < ($1.answer.since, $1.room) }
            .map { QueuedTicket(ticketId: ticketID(room: $0.room), answer: $0.answer) }
    }
}
