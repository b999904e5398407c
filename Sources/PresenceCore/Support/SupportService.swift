import Logging

/// The support face: ticket rooms with roles, typing state, assignment metadata and transcripts that outlive the
/// room. Tickets' own state is behind ``SupportStorage``; presence, transcripts and events use the same
/// ``PresenceStorage``, ``HistoryStorage`` and ``EventPublisher`` kinds as chat.
public struct SupportService: Sendable {
    public let settings: SupportSettings
    public let tickets: any SupportStorage
    public let presence: any PresenceStorage
    public let history: any HistoryStorage
    public let broadcaster: any EventPublisher
    public let users: UserDirectory
    /// Support messages per user (`SUPPORT_MESSAGE_RATE_LIMIT` per 60 s).
    public let messageLimiter: SlidingWindowLimiter
    /// Presence changes per user, shared with chat (`PRESENCE_RATE_LIMIT`): joins and leaves count.
    public let presenceLimiter: SlidingWindowLimiter?
    /// Waiting episodes (unattended tickets); `nil`: none are kept and the queue is empty.
    public var waiting: (any SupportWaitingStorage)?
    /// `message_unseen` notices for the ticket's customer and assigned agent (`nil`: no receiver wants them).
    public var unseen: UnseenMessages?
    let logger: Logger

    /// `history` must refuse new messages at its cap rather than trim (``HistoryOverflow/refuseNew``): a transcript
    /// outlives the room and must not be erasable by flooding.
    public init(
        tickets: any SupportStorage, presence: any PresenceStorage, history: any HistoryStorage, users: UserDirectory,
        events: any EventPublisher, limits: any RateLimitStorage, settings: SupportSettings, logger: Logger,
        presenceLimiter: SlidingWindowLimiter? = nil, waiting: (any SupportWaitingStorage)? = nil
    ) {
        self.waiting = waiting
        self.settings = settings
        self.tickets = tickets
        self.presence = presence
        self.history = history
        self.users = users
        self.broadcaster = events
        self.messageLimiter = SlidingWindowLimiter(
            name: "support-messages", limit: settings.messageLimit, window: .seconds(60), storage: limits
        )
        self.presenceLimiter = presenceLimiter
        self.logger = logger
    }

    /// `ticket_<ticketId>`, or ``DomainError/invalid(_:)`` when the ticket id breaks `^[A-Za-z0-9_-]{1,64}$`.
    public static func roomID(ticket: String) throws -> String {
        let ok = (1...64).contains(ticket.utf8.count) && ticket.utf8.allSatisfy {
            ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 95 || $0 == 45
        }
        guard ok else { throw DomainError.invalid("Invalid ticket ID format") }
        return "ticket_\(ticket)"
    }

    // MARK: - Agents

    /// Whether `user` is an agent (admins always are).
    public func isAgent(_ user: String) async throws -> Bool {
        if isAdmin(user) { return true }
        return try await tickets.isAgent(user)
    }

    public func isAdmin(_ user: String) -> Bool {
        settings.admins.contains(user) && (settings.roster?.isAdmin(user) ?? true)
    }

    /// Makes a registered user an agent (admins only).
    public func addAgent(_ name: String, by user: String) async throws {
        guard isAdmin(user) else { throw DomainError.forbidden("Forbidden") }
        guard try await users.existing([name]).first == true else { throw DomainError.notFound("User not found") }
        try await tickets.addAgent(name)
    }

    /// Removes an agent (admins only); returns whether it was one.
    @discardableResult
    public func removeAgent(_ name: String, by user: String) async throws -> Bool {
        guard isAdmin(user) else { throw DomainError.forbidden("Forbidden") }
        let removed = try await tickets.removeAgent(name)
        // Their live ticket subscriptions end, on every worker, except on tickets where they are the customer.
        // So do their subscriptions to the queue's channel.
        if removed {
            await broadcaster.publish(AccessChange(user: name, prefix: "private-room-ticket_"))
            await broadcaster.publish(AccessChange(user: name, channels: [Self.queueChannel]))
        }
        return removed
    }

    /// The agents (admins only), sorted.
    public func agents(by user: String) async throws -> [String] {
        guard isAdmin(user) else { throw DomainError.forbidden("Forbidden") }
        return try await tickets.agents()
    }

    // MARK: - Access

    /// The room, after the access rule: 404 when it never existed, 403 unless `user` is its customer, an agent or
    /// an admin, 410 when closed and `live` is required.
    func access(_ room: String, user: String, live: Bool) async throws -> (SupportRoom, isAgent: Bool) {
        let (meta, listedAgent) = try await tickets.ticket(room, user: user)
        guard meta["type"] == "support" else { throw DomainError.roomNotFound }
        let ticket = SupportRoom(meta: meta)
        let agent = isAdmin(user) || listedAgent
        guard agent || ticket.customer == user else { throw DomainError.forbidden("Forbidden") }
        if live && ticket.closed { throw DomainError.roomClosed }
        return (ticket, agent)
    }

    /// Whether `user` may use the ticket's room (its customer, an agent or an admin), closed or not.
    public func canAccess(ticket: String, user: String) async throws -> Bool {
        do {
            _ = try await access(try Self.roomID(ticket: ticket), user: user, live: false)
            return true
        } catch is DomainError {
            return false
        }
    }

    // MARK: - Routes

    /// Joins (creating the room on first use); joining again refreshes presence, updates the role, clears typing.
    ///
    /// The customer seat is decided once: by whoever creates the room joining as customer; on a ticket an agent opened
    /// (metadata or a join) without naming a customer, by the first user to join as customer; or in advance by an
    /// agent (``updateMetadata(ticket:user:priority:assignedAgentId:status:customer:)``), which locks it. Once taken,
    /// nobody else can take it. A refused join changes nothing, and a closed ticket takes no joins.
    public func join(ticket: String, user: String, role: SupportMember.Role) async throws -> SupportMember {
        let room = try Self.roomID(ticket: ticket)
        let agent = try await isAgent(user)
        if role != .customer && !agent { throw DomainError.forbidden("Forbidden") }
        try await limitPresence(user)
        let ticketRoom = try await tickets.open(room: room, ticket: ticket, user: user, asCustomer: role == .customer, isAgent: agent)
        guard ticketRoom.id == room else { throw DomainError.roomNotFound }
        guard agent || ticketRoom.customer == user else { throw DomainError.forbidden("Forbidden") }
        if ticketRoom.closed { throw DomainError.roomClosed }
        await registerWaiting(room: room)
        let result = try await presence.join(
            room: room, user: user, ttl: settings.presenceTTL, state: SupportMember.state(role: role, typing: false)
        )
        let member = SupportMember(result.member)
        if result.isNew {
            await broadcaster.publish([event(.memberJoined, ticketRoom, ["member": member.json])])
        } else if result.previousState != result.member.state {
            await broadcaster.publish([event(.memberUpdated, ticketRoom, ["member": member.json])])
        }
        await syncWaiting(room: room)
        return member
    }

    /// Sets the typing flag of a present member (and refreshes its TTL); broadcasts only on change.
    public func typing(ticket: String, user: String, typing: Bool) async throws -> SupportMember {
        let room = try Self.roomID(ticket: ticket)
        let (ticketRoom, _) = try await access(room, user: user, live: true)
        let current = try await presence.states(room: room, users: [user]).first ?? [:]
        let role = current["role"]?.string.flatMap(SupportMember.Role.init(rawValue:)) ?? .customer
        guard let refreshed = try await presence.refresh(
            room: room, user: user, ttl: settings.presenceTTL, state: SupportMember.state(role: role, typing: typing)
        ) else { throw DomainError.notPresent }
        let member = SupportMember(refreshed.member)
        if refreshed.previousState != refreshed.member.state {
            await broadcaster.publish([event(.memberUpdated, ticketRoom, ["member": member.json])])
        }
        return member
    }

    /// Refreshes presence; returns the new expiry.
    public func heartbeat(ticket: String, user: String) async throws -> Int64 {
        let room = try Self.roomID(ticket: ticket)
        _ = try await access(room, user: user, live: true)
        guard let refreshed = try await presence.refresh(room: room, user: user, ttl: settings.presenceTTL) else {
            throw DomainError.notPresent
        }
        return refreshed.member.expiresAt
    }

    /// Leaves at once (not being there is fine).
    public func leave(ticket: String, user: String) async throws {
        let room = try Self.roomID(ticket: ticket)
        let (ticketRoom, _) = try await access(room, user: user, live: true)
        try await limitPresence(user)
        await registerWaiting(room: room)
        let left = try await presence.leave(room: room, user: user)
        if left.wasPresent {
            await broadcaster.publish([event(.memberLeft, ticketRoom, ["username": .string(user), "reason": .string(LeaveReason.left.rawValue)])])
            await syncWaiting(room: room)
        }
    }

    /// A partial metadata update by an agent or admin; `null` clears a field. Creates the room when missing.
    public func updateMetadata(
        ticket: String, user: String, priority: String??, assignedAgentId: String??, status: String?, customer: String? = nil
    ) async throws -> SupportRoom {
        let room = try Self.roomID(ticket: ticket)
        guard try await isAgent(user) else { throw DomainError.forbidden("Forbidden") }
        var fields: [(String, String)] = []
        if let priority {
            if let value = priority, !["low", "normal", "high", "urgent"].contains(value) {
                throw DomainError.invalid("Field 'priority' must be one of low, normal, high, urgent, or null")
            }
            fields.append(("priority", priority ?? ""))
        }
        if let assignedAgentId {
            if let agent = assignedAgentId {
                guard let name = Validation.username(agent), try await isAgent(name) else {
                    throw DomainError.invalid("Field 'assignedAgentId' must be an agent's username or null")
                }
                fields.append(("assignedAgentId", name))
            } else {
                fields.append(("assignedAgentId", ""))
            }
        }
        if let status {
            guard ["open", "pending", "resolved"].contains(status) else {
                throw DomainError.invalid("Field 'status' must be one of open, pending, resolved")
            }
            fields.append(("status", status))
        }
        if let customer {
            guard let name = Validation.username(customer), try await users.existing([name]).first == true else {
                throw DomainError.invalid("Field 'customerId' must be a registered user's username")
            }
            fields.append(("customer", name))
        }
        let (changed, ticketRoom) = try await tickets.updateMetadata(room: room, ticket: ticket, user: user, fields: fields)
        guard ticketRoom.id == room else { throw DomainError.roomNotFound }
        if changed {
            await broadcaster.publish([event(.metadataUpdated, ticketRoom, ["room": ticketRoom.json])])
            // A customer replaced loses the ticket's channel wherever they hold it.
            if customer != nil { await broadcaster.publish(AccessChange(user: nil, channels: [ticketRoom.channel])) }
        }
        return ticketRoom
    }

    /// Present members, oldest join first, one page at a time.
    public func members(ticket: String, user: String, limit: Int, cursor: String?) async throws -> (members: [SupportMember], nextCursor: String?) {
        let room = try Self.roomID(ticket: ticket)
        _ = try await access(room, user: user, live: true)
        let page = try await presence.members(room: room, ttl: settings.presenceTTL, limit: limit, cursor: cursor)
        let states = try await presence.states(room: room, users: page.members.map(\.username))
        let members = zip(page.members, states).map { member, state in
            var member = member
            member.state = state
            return SupportMember(member)
        }
        return (members, page.nextCursor)
    }

    /// Posts to the transcript; the author's role is their role in the room (agents default to agent).
    public func postMessage(ticket: String, user: String, content: String) async throws -> ChatMessage {
        let room = try Self.roomID(ticket: ticket)
        let (ticketRoom, agent) = try await access(room, user: user, live: true)
        let decision = try await messageLimiter.check(user)
        guard decision.allowed else { throw DomainError.rateLimited(decision) }
        let state = try await presence.states(room: room, users: [user]).first ?? [:]
        let role = state["role"]?.string ?? (agent && ticketRoom.customer != user ? "agent" : "customer")
        let message = try await history.append(room: room, username: user, content: content, role: role, isAI: false)
        await broadcaster.publish([event(.roomMessage, ticketRoom, ["roomId": .string(room), "message": message.json])])
        if let unseen {
            await unseen.posted(room: room, message: message, members: [ticketRoom.customer, ticketRoom.assignedAgentId].compactMap { $0 })
        }
        return message
    }

    /// The transcript, oldest first, after `after`. Readable after close; 404 once the room is gone.
    public func messages(ticket: String, user: String, limit: Int, after: String?) async throws -> [ChatMessage] {
        let room = try Self.roomID(ticket: ticket)
        _ = try await access(room, user: user, live: false)
        return try await history.oldest(room: room, count: limit, after: after)
    }

    /// Closes the room: live state goes in one step, a snapshot is written; history and snapshot stay unless asked.
    public func close(ticket: String, user: String, deleteHistory: Bool, deleteSnapshot: Bool) async throws -> JSONValue {
        let room = try Self.roomID(ticket: ticket)
        let (ticketRoom, agent) = try await access(room, user: user, live: false)
        guard agent else { throw DomainError.forbidden("Forbidden") }
        await registerWaiting(room: room)
        let closed = try await tickets.close(room: room, by: user, deleteHistory: deleteHistory, deleteSnapshot: deleteSnapshot)
        let snapshot = Self.normalize(snapshot: closed.snapshot)
        var events = closed.present.map {
            event(.memberLeft, ticketRoom, ["username": .string($0), "reason": .string(LeaveReason.closed.rawValue)])
        }
        events.append(event(.roomClosed, ticketRoom, ["roomId": .string(room), "snapshot": snapshot]))
        await broadcaster.publish(events)
        await syncWaiting(room: room)
        // Whoever may no longer hold the ticket's channel once it is closed loses it on every worker.
        await broadcaster.publish(AccessChange(user: nil, channels: [ticketRoom.channel]))
        return snapshot
    }

    /// Reopens a closed room (agents and admins).
    public func reopen(ticket: String, user: String) async throws -> SupportRoom {
        let room = try Self.roomID(ticket: ticket)
        let (_, agent) = try await access(room, user: user, live: false)
        guard agent else { throw DomainError.forbidden("Forbidden") }
        guard let (wasClosed, ticketRoom) = try await tickets.reopen(room: room) else { throw DomainError.roomNotFound }
        if wasClosed { await broadcaster.publish([event(.roomReopened, ticketRoom, ["room": ticketRoom.json])]) }
        return ticketRoom
    }

    /// The snapshot written at close; 404 when there is none (never closed, or deleted).
    public func snapshot(ticket: String, user: String) async throws -> JSONValue {
        let room = try Self.roomID(ticket: ticket)
        _ = try await access(room, user: user, live: false)
        guard let text = try await tickets.snapshot(room: room) else {
            throw DomainError.notFound("Snapshot not found")
        }
        return Self.normalize(snapshot: text)
    }

    /// The ticket's attendance (agents and admins only: anyone else gets 403, the ticket's customer too, whether or
    /// not the ticket exists): every presence that ended, as an interval with its role and reason (`left`, `expired`,
    /// `closed`), in the order of their joins, then the members present now as open intervals, in the same order.
    /// Readable after close, as the transcript; 404 for a ticket that never existed.
    public func attendance(ticket: String, user: String) async throws -> [AttendanceInterval] {
        let room = try Self.roomID(ticket: ticket)
        let (meta, listedAgent) = try await tickets.ticket(room, user: user)
        guard isAdmin(user) || listedAgent else { throw DomainError.forbidden("Forbidden") }
        guard meta["type"] == "support" else { throw DomainError.roomNotFound }
        return Self.ordered(attendance: try await tickets.attendance(room: room))
    }

    /// Ended intervals by join time (then end, then user, then as recorded: the list is in the order the presences
    /// ended, which the sweeper's delay may change), then the open ones by join time.
    static func ordered(attendance intervals: [AttendanceInterval]) -> [AttendanceInterval] {
        let indexed = intervals.enumerated().map { (index: $0.offset, interval: $0.element) }
        let sorted = indexed.sorted { a, b in
            let x = a.interval, y = b.interval
            if x.isOpen != y.isOpen { return !x.isOpen }
            if x.from != y.from { return x.from < y.from }
            let xTo = x.to ?? .max, yTo = y.to ?? .max
            if xTo != yTo { return xTo < yTo }
            if x.user != y.user { return x.user < y.user }
            return a.index < b.index
        }
        return sorted.map(\.interval)
    }

    /// Announces members of a support room whose presence expired (from the sweeper).
    public func announceExpired(room: String, users: [String], meta: [String: String]) async {
        let ticketRoom = SupportRoom(meta: meta)
        await broadcaster.publish(users.map {
            event(.memberLeft, ticketRoom, ["username": .string($0), "reason": .string(LeaveReason.expired.rawValue)])
        })
        await syncWaiting(room: room)
    }

    private func limitPresence(_ user: String) async throws {
        guard let presenceLimiter else { return }
        let decision = try await presenceLimiter.check(user)
        guard decision.allowed else { throw DomainError.rateLimited(decision) }
    }

    func event(_ name: ServiceEvent, _ room: SupportRoom, _ data: JSONValue) -> BroadcastEvent {
        BroadcastEvent(name, channel: room.channel, data: data)
    }

    /// cjson writes an empty table as `{}`: make `members` always an array.
    static func normalize(snapshot text: String) -> JSONValue {
        guard case .object(var object) = JSONValue.parse(Array(text.utf8)) else { return [:] }
        if case .array = object["members"] {} else { object["members"] = .array([]) }
        return .object(object)
    }
}
