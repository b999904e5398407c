@testable import PresenceCore

/// ``SupportWaitingStorage`` in memory: the rule of `support_waiting.lua` and the index of `lease_index.lua`
/// on the world's clock.
struct InMemorySupportWaitingStore: SupportWaitingStorage {
    let world: World

    enum Mode { case sync, notify, read }

    static func step(_ state: inout World.State, room: String, mode: Mode, after: Int64) -> WaitingAnswer {
        let now = state.now
        let meta = state.meta[room] ?? [:]
        var customer = false, agent = false
        if meta["type"] == "support" && meta["closed"] != "1" {
            for presence in World.present(state, room: room).values {
                switch presence.state["role"]?.string ?? "customer" {
                case "customer": customer = true
                case "agent": agent = true
                default: break
                }
            }
        }
        let holds = customer && !agent
        let episode = state.waiting[room]
        func answer(_ status: WaitingAnswer.Status, _ since: Int64?, _ notified: Bool) -> WaitingAnswer {
            WaitingAnswer(
                status: status, since: since ?? 0, waitMs: since.map { max(0, now - $0) } ?? 0, notified: notified,
                customer: meta["customer"], assignedAgentId: meta["assignedAgentId"], now: now
            )
        }
        guard holds else {
            guard let episode, mode != .read else { return answer(.none, nil, false) }
            state.waiting[room] = nil
            return answer(agent && meta["closed"] != "1" ? .attended : .ended, episode.since, episode.notified)
        }
        guard let episode else {
            if mode == .read { return answer(.none, nil, false) }
            state.waiting[room] = (now, false)
            return answer(.started, now, false)
        }
        if mode == .notify && !episode.notified && episode.since + after <= now {
            state.waiting[room]?.notified = true
            return answer(.notify, episode.since, true)
        }
        return answer(.waiting, episode.since, episode.notified)
    }

    func sync(room: String, after: Duration) async throws -> WaitingAnswer {
        world.withState { state in
            let due = state.now + after.milliseconds
            state.waitingIndex[room] = min(state.waitingIndex[room] ?? .max, due)
            let answer = Self.step(&state, room: room, mode: .sync, after: after.milliseconds)
            if answer.status == .started { state.waitingIndex[room] = answer.since + after.milliseconds }
            return answer
        }
    }

    func register(room: String, after: Duration) async throws {
        world.withState { state in
            state.waitingIndex[room] = min(state.waitingIndex[room] ?? .max, state.now + after.milliseconds)
        }
    }

    func due(limit: Int, lease: Duration) async throws -> [DueWaiting] {
        world.withState { state in
            let now = state.now
            let due = state.waitingIndex.filter { $0.value <= now }.keys.sorted().prefix(limit)
            return due.map { room in
                state.waitingIndex[room] = now + lease.milliseconds
                return DueWaiting(room: room, leasedUntil: now + lease.milliseconds)
            }
        }
    }

    func notify(_ due: DueWaiting, after: Duration) async throws -> WaitingAnswer {
        world.withState { state in
            let answer = Self.step(&state, room: due.room, mode: .notify, after: after.milliseconds)
            guard state.waitingIndex[due.room] == due.leasedUntil else { return answer }
            switch answer.status {
            case .none, .attended, .ended: state.waitingIndex[due.room] = nil
            case .notify: state.waitingIndex[due.room] = .max
            case .started, .waiting: state.waitingIndex[due.room] = answer.notified ? .max : answer.since + after.milliseconds
            }
            return answer
        }
    }

    func queue() async throws -> [(room: String, answer: WaitingAnswer)] {
        world.withState { state in
            state.waitingIndex.keys.sorted().compactMap { room in
                let answer = Self.step(&state, room: room, mode: .read, after: 0)
                return answer.status == .waiting ? (room, answer) : nil
            }
        }
    }
}
