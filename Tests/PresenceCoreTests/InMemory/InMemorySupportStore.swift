@testable import PresenceCore

/// ``SupportStorage`` in memory: the same seat, closing and attendance rules as `support_open.lua`,
/// `support_close.lua` and `support_attendance.lua`.
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
            for (member, presence) in (state.presence[room] ?? [:]).sorted(by: { $0.key < $1.key }) {
                World.endPresence(&state, room: room, user: member, presence, reason: .closed)
            }
            state.presence[room] = nil
            meta["closed"] = "1"
            state.meta[room] = meta
            let members = present.map { "{\"username\":\"\($0)\"}" }.joined(separator: ",")
            let (first, agentTime) = Self.agentTimes(state.attendance[room] ?? [])
            let firstAfter = first.map { String(max(0, $0 - (Int64(meta["createdAt"] ?? "") ?? 0))) } ?? "null"
            let snapshot = "{\"roomId\":\"\(room)\",\"closedBy\":\"\(user)\",\"messageCount\":\(state.history[room]?.count ?? 0),\"members\":[\(members)],"
                + "\"firstAgentAfterMs\":\(firstAfter),\"agentPresentMs\":\(agentTime)}"
            if deleteHistory {
                state.history[room] = nil
                state.attendance[room] = nil
            }
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

    func attendance(room: String) async throws -> [AttendanceInterval] {
        world.withState { state in
            let open = World.present(state, room: room).sorted { ($0.value.joinedAt, $0.key) < ($1.value.joinedAt, $1.key) }.map {
                AttendanceInterval(user: $0.key, role: $0.value.state["role"]?.string ?? "customer", from: $0.value.joinedAt, to: nil, reason: nil)
            }
            return (state.attendance[room] ?? []) + open
        }
    }

    /// The first agent's start and the length of the union of the agent intervals, as `lib/attendance.lua` computes them.
    static func agentTimes(_ intervals: [AttendanceInterval]) -> (first: Int64?, total: Int64) {
        let spans = intervals.filter { $0.role == "agent" }.compactMap { interval in interval.to.map { (interval.from, $0) } }.sorted { $0.0 < $1.0 }
        guard var current = spans.first else { return (nil, 0) }
        var total: Int64 = 0
        for span in spans.dropFirst() {
            if span.0 > current.1 {
                total += current.1 - current.0
                current = span
            } else {
                current.1 = max(current.1, span.1)
            }
        }
        return (spans[0].0, total + current.1 - current.0)
    }
}
