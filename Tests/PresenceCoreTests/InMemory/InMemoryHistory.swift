@testable import PresenceCore

/// ``HistoryStorage`` in memory, with the same limit rules as the Redis stream (trim or refuse).
struct InMemoryHistory: HistoryStorage {
    let world: World
    let limit: Int
    let overflow: HistoryOverflow

    func append(room: String, username: String, content: String, role: String?, isAI: Bool) async throws -> ChatMessage {
        try world.withState { state in
            guard let meta = state.meta[room] else { throw DomainError.roomNotFound }
            if meta["closed"] == "1" { throw DomainError.roomClosed }
            var messages = state.history[room] ?? []
            if overflow == .refuseNew && messages.count >= limit { throw DomainError.conflict("Transcript is full") }
            state.lastMessageID += 1
            let message = ChatMessage(
                id: "\(state.now)-\(state.lastMessageID)", roomId: room, username: username, content: content,
                timestamp: state.now, role: role, isAI: isAI
            )
            messages.append(message)
            if messages.count > limit { messages.removeFirst(messages.count - limit) }
            state.history[room] = messages
            return message
        }
    }

    func newest(room: String, count: Int, before: String?) async throws -> [ChatMessage] {
        world.withState { state in
            let all = state.history[room] ?? []
            let older = before.map { id in all.prefix { $0.id != id } } ?? all[...]
            return Array(older.reversed().prefix(count))
        }
    }

    func delete(room: String, id: String) async throws -> Bool {
        world.withState { state in
            guard let index = state.history[room]?.firstIndex(where: { $0.id == id }) else { return false }
            state.history[room]?.remove(at: index)
            return true
        }
    }

    func oldest(room: String, count: Int, after: String?) async throws -> [ChatMessage] {
        world.withState { state in
            let all = state.history[room] ?? []
            let newer = after.map { id in all.drop { $0.id != id }.dropFirst() } ?? all[...]
            return Array(newer.prefix(count))
        }
    }
}
