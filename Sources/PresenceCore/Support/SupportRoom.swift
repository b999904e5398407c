/// A support ticket room as clients see it.
public struct SupportRoom: Sendable, Equatable {
    public var id: String
    public var ticketId: String
    public var priority: String?
    public var assignedAgentId: String?
    public var status: String
    public var createdAt: Int64
    /// The customer who opened it (first to join as customer), if any yet.
    public var customer: String?
    public var closed: Bool

    package init(meta: [String: String]) {
        self.id = meta["id"] ?? ""
        self.ticketId = meta["ticketId"] ?? ""
        self.priority = meta["priority"]
        self.assignedAgentId = meta["assignedAgentId"]
        self.status = meta["status"] ?? "open"
        self.createdAt = Int64(meta["createdAt"] ?? "") ?? 0
        self.customer = meta["customer"]
        self.closed = meta["closed"] == "1"
    }

    /// `{id, ticketId, metadata: {ticketId, priority, assignedAgentId, status}, customerId, createdAt}`.
    public var json: JSONValue {
        [
            "id": .string(id), "ticketId": .string(ticketId),
            "metadata": [
                "ticketId": .string(ticketId), "priority": .optional(priority),
                "assignedAgentId": .optional(assignedAgentId), "status": .string(status),
            ],
            "customerId": .optional(customer),
            "createdAt": .int64(createdAt),
        ]
    }

    /// The client channel of the ticket's events.
    public var channel: String { "private-room-\(id)" }
}
