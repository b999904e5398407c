/// Each room's messages, in order, with ids that are unique per room, time-ordered and usable as cursors.
public protocol HistoryStorage: Sendable {
    /// Appends a message. Throws ``DomainError/roomNotFound`` (no such room), ``DomainError/roomClosed`` (a closed
    /// support room) or, when the history is full and refuses new messages, ``DomainError/conflict(_:)``.
    func append(room: String, username: String, content: String, role: String?, isAI: Bool) async throws -> ChatMessage
    /// Up to `count` messages older than `before` (or the newest), newest first.
    func newest(room: String, count: Int, before: String?) async throws -> [ChatMessage]
    /// Up to `count` messages newer than `after` (or the oldest), oldest first.
    func oldest(room: String, count: Int, after: String?) async throws -> [ChatMessage]
    /// Deletes one message; `false` when the room's history has no such message.
    func delete(room: String, id: String) async throws -> Bool
}

extension HistoryStorage {
    public func append(room: String, username: String, content: String) async throws -> ChatMessage {
        try await append(room: room, username: username, content: content, role: nil, isAI: false)
    }
}

/// What happens to a message past a history's limit.
public enum HistoryOverflow: String, Sendable {
    /// The oldest messages are trimmed (chat rooms).
    case trimOldest = "trim"
    /// The new message is refused with ``DomainError/conflict(_:)`` "Transcript is full" (support transcripts,
    /// which nobody can erase by flooding).
    case refuseNew = "refuse"
}
