@testable import PresenceCore

/// ``SocketPresenceStorage`` in memory: a user's sockets per room, each with its own expiry.
extension InMemoryPresenceStore: SocketPresenceStorage {
    func attachSocket(
        _ socket: String, user: String, room: String, openingChannel: String?, ttl: Duration, state newState: JSONValue?, maxMembers: Int?
    ) async throws -> PresenceJoin {
        try world.withState { state in
            if let channel = openingChannel, state.meta[room] == nil {
                state.meta[room] = ["id": room, "type": "channel", "channel": channel, "createdAt": String(state.now)]
            }
            let present = World.present(state, room: room)
            if let maxMembers, present[user] == nil, present.count >= maxMembers { throw PresenceChannelFull() }
            state.sockets["\(room) \(user)", default: [:]][socket] = state.now + ttl.milliseconds
        }
        return try await join(room: room, user: user, ttl: ttl, state: newState)
    }

    func detachSocket(_ socket: String, user: String, room: String) async throws -> PresenceLeave? {
        let isLast = world.withState { state in
            let key = "\(room) \(user)"
            state.sockets[key]?[socket] = nil
            state.sockets[key] = state.sockets[key]?.filter { $0.value > state.now }
            if state.sockets[key]?.isEmpty ?? true {
                state.sockets[key] = nil
                return true
            }
            return false
        }
        guard isLast else { return nil }
        let left = try await leave(room: room, user: user)
        return left.wasPresent ? left : nil
    }

    func refreshSockets(_ entries: [SocketEntry], ttl: Duration) async throws -> [Int] {
        var lapsed: [Int] = []
        for (index, entry) in entries.enumerated() {
            // Only a socket still recorded and live is refreshed (as socket_refresh.lua does).
            let live = world.withState { state -> Bool in
                let key = "\(entry.room) \(entry.user)"
                guard let expiry = state.sockets[key]?[entry.socket], expiry > state.now else { return false }
                state.sockets[key]?[entry.socket] = state.now + ttl.milliseconds
                return true
            }
            if !live {
                lapsed.append(index)
            } else if try await refresh(room: entry.room, user: entry.user, ttl: ttl) == nil {
                lapsed.append(index)
            }
        }
        return lapsed
    }
}
