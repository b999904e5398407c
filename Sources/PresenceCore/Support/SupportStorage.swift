/// Support tickets' own state: who the agents are, each ticket room's metadata (customer, assignment, status,
/// closed), the snapshot written when it closes, and its attendance. Presence and transcripts live in the shared
/// ``PresenceStorage`` and ``HistoryStorage``; whatever ends a member's presence in a ticket (a leave, an expiry, the
/// close) also records its ``AttendanceInterval`` in the same step.
public protocol SupportStorage: Sendable {
    func isAgent(_ user: String) async throws -> Bool
    func addAgent(_ user: String) async throws
    /// Removes an agent; returns whether it was one.
    func removeAgent(_ user: String) async throws -> Bool
    func agents() async throws -> [String]

    /// The ticket room's metadata (empty when it does not exist) and whether `user` is a listed agent, in one step.
    func ticket(_ room: String, user: String) async throws -> (meta: [String: String], isListedAgent: Bool)
    /// Opens the room on first use or lets a participant in, atomically: whoever creates it joining as customer
    /// takes the customer seat; on an existing room only an agent or its customer gets in (else
    /// ``DomainError/forbidden(_:)``), and a closed room takes no one (``DomainError/roomClosed``). A refused call
    /// changes nothing. Returns the room.
    func open(room: String, ticket: String, user: String, asCustomer: Bool, isAgent: Bool) async throws -> SupportRoom
    /// Sets or clears (empty value) metadata fields, creating the room when missing; returns whether anything
    /// changed and the room after.
    func updateMetadata(room: String, ticket: String, user: String, fields: [(String, String)]) async throws -> (changed: Bool, room: SupportRoom)
    /// Closes the room in one step: live presence goes, a snapshot (JSON) is written, history and snapshot are
    /// kept unless asked. Returns the snapshot and who was present; ``DomainError/roomNotFound`` or
    /// ``DomainError/roomClosed`` (already closed).
    func close(room: String, by user: String, deleteHistory: Bool, deleteSnapshot: Bool) async throws -> (snapshot: String, present: [String])
    /// Reopens a closed room; returns whether it was closed and the room, `nil` when it does not exist.
    func reopen(room: String) async throws -> (wasClosed: Bool, room: SupportRoom)?
    /// The snapshot written at close, if any.
    func snapshot(room: String) async throws -> String?
    /// The ticket's attendance in one read: the intervals kept (presences that ended, in the order they were
    /// recorded; the newest `SUPPORT_ATTENDANCE_LIMIT`; none once the history was deleted at close), then the members
    /// present now as open intervals. Empty for a room that does not exist.
    func attendance(room: String) async throws -> [AttendanceInterval]
}
