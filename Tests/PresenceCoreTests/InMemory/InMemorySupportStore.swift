@testable import PresenceCore

/// ``SupportStorage`` in memory: the same seat and closing rules as `support_open.lua` and `support_close.lua`.
struct InMemorySupportStore: SupportStorage {
    let world: World

    func isAgent(_ user: String) async throws -> Bool { world.withState { $0.agents.contains(user) } }
    func addAgent(_ user: String) async throws { world.withState { _ = $0.agents.insert(user) } }
    func removeAgent(_ user: String) async throws -> Bool { world.withState { $0.agents.remove(user) != nil } }
    func agents() async throws -> [String] { world.withState { $0.agents.sorted() } }

    func ticket(_ room: String, user: String) async throws -> (meta: [String: String], isListedAgent: Bool) {
        world.withState { ($0.meta[room] ?? [:], $0.agents.contains(user)) }
    }

    func open(room: String, ticket: String, user: String, asCustomer: Bool, isAgent: Bool) async throws -> SupportRoom {
        try world.withState { state in
            guard let meta = state.meta[room] else {
                var meta = ["id": room, "type": "support", "ticketId": ticket, "status": "open",
                            "createdAt": String(state.now), "createdBy": user, "closed": "0"]
                if asCustomer { meta["customer"] = user }
                state.meta[room] = meta
                return SupportRoom(meta: meta)
            }
            let customer = meta["customer"]
            guard meta["type"] == "support", isAgent || customer == user || (customer == nil && asCustomer) else {
                throw DomainError.forbidden("Forbidden")
            }
            if meta["closed"] == "1" { throw DomainError.roomClosed }
            guard !isAgent, customer == nil else { return SupportRoom(meta: meta) }
            var seated = meta
            seated["customer"] = user
            state.meta[room] = seated
            return SupportRoom(meta: seated)
        }
    }

    func updateMetadata(room: String, ticket: String, user: String, fields: [(String, String)]) async throws -> (changed: Bool, room: SupportRoom) {
        world.withState { state in
            var meta = state.meta[room] ?? ["id": room, "type": "support", "ticketId": ticket, "status": "open",
                                            "createdAt": String(state.now), "createdBy": user, "closed": "0"]
            let before = meta
            for (field, value) in fields { meta[field] = value.isEmpty ? nil : value }
            state.meta[room] = meta
            return (meta != before, SupportRoom(meta: meta))
        }
    }

    func close(room: String, by user: String, deleteHistory: Bool, deleteSnapshot: Bool) async throws -> (snapshot: String, present: [String]) {
        try world.withState { state in
            guard var meta = state.meta[room] else { throw DomainError.roomNotFound }
            if meta["closed"] == "1" { throw DomainError.roomClosed }
            let present = World.present(state, room: room).keys.sorted()
            state.presence[room] = nil
            meta["closed"] = "1"
            state.meta[room] = meta
            let members = present.map { "{\"username\":\"\($0)\"}" }.joined(separator: ",")
            let snapshot = "{\"roomId\":\"\(room)\",\"closedBy\":\"\(user)\",\"messageCount\":\(state.history[room]?.count ?? 0),\"members\":[\(members)]}"
            if deleteHistory { state.history[room] = nil }
            if !deleteSnapshot { state.snapshots[room] = snapshot }
            return (snapshot, present)
        }
    }

    func reopen(room: String) async throws -> (wasClosed: Bool, room: SupportRoom)? {
        world.withState { state in
            guard var meta = state.meta[room] else { return nil }
            let was = meta["closed"] == "1"
            meta["closed"] = "0"
            state.meta[room] = meta
            return (was, SupportRoom(meta: meta))
        }
    }

    func snapshot(room: String) async throws -> String? { world.withState { $0.snapshots[room] } }
}
