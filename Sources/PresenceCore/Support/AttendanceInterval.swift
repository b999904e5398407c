/// One presence of a member in a support ticket, from join to leave: what `GET /support/{ticketId}/attendance` lists.
/// Closed intervals come from the ticket's attendance (written by the step that ended the presence); a member present
/// now is an open interval, `to` and `reason` `nil`.
public struct AttendanceInterval: Sendable, Equatable {
    /// The member's username.
    public var user: String
    /// Their role in the room when the interval ended (or now, for an open one): `customer`, `agent` or `observer`.
    public var role: String
    /// When they joined (ms, Redis's clock).
    public var from: Int64
    /// When the presence ended (ms, Redis's clock): the leave or the close, or for `expired` the presence deadline;
    /// `nil` while they are present.
    public var to: Int64?
    /// Why it ended; `nil` while they are present.
    public var reason: LeaveReason?

    public init(user: String, role: String, from: Int64, to: Int64?, reason: LeaveReason?) {
        self.user = user
        self.role = role
        self.from = from
        self.to = to
        self.reason = reason
    }

    /// An interval as `lib/attendance.lua` writes it, `{"user", "role", "from", "to", "reason"}`; `nil` when the text
    /// is not one.
    public init?(json value: JSONValue) {
        guard let object = value.object, let user = object["user"]?.string, let role = object["role"]?.string,
              let from = object["from"]?.int else { return nil }
        let to = object["to"]?.int
        let reason = object["reason"]?.string.flatMap(LeaveReason.init(rawValue:))
        guard (to == nil) == (reason == nil) else { return nil }
        self.init(user: user, role: role, from: Int64(from), to: to.map(Int64.init), reason: reason)
    }

    /// Whether the member is still present (the interval has not ended).
    public var isOpen: Bool { to == nil }

    /// `{user, role, from, to, reason}`; `to` and `reason` `null` while open.
    public var json: JSONValue {
        [
            "user": .string(user), "role": .string(role), "from": .int64(from),
            "to": to.map(JSONValue.int64) ?? .null, "reason": .optional(reason?.rawValue),
        ]
    }
}
