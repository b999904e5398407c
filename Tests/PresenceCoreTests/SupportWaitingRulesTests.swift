import Logging
import Testing
@testable import PresenceCore

/// Unattended tickets (#32) over the in-memory twin: episodes, the watcher's notice once per episode, `ticket-attended`
/// with the wait, the queue's order and who may read it.
@Suite("Support waiting rules (in memory)")
struct SupportWaitingRulesTests {
    func watcher(_ f: Fixture) -> UnattendedWatcher {
        UnattendedWatcher(
            support: f.support, storage: InMemorySupportWaitingStore(world: f.world), webhooks: nil,
            interval: .seconds(1), logger: Logger(label: "test")
        )
    }

    func named(_ f: Fixture, _ name: ServiceEvent) -> [BroadcastEvent] {
        f.events.events.filter { $0.event == name.rawValue }
    }

    @Test func aNoticeOncePerEpisodeAndAttendedWithTheWait() async throws {
        var settings = SupportSettings()
        settings.unattendedAfter = .seconds(60)
        settings.presenceTTL = .seconds(600)
        let f = Fixture(supportSettings: settings)
        try await f.register("cust", "agent1")
        try await f.support.addAgent("agent1", by: "boss")
        let w = watcher(f)
        _ = try await f.support.join(ticket: "T1", user: "cust", role: .customer)
        let t0 = f.world.now
        f.world.advance(.seconds(59))
        try await w.watchOnce()
        #expect(named(f, .ticketUnattended).isEmpty)
        #expect(try await f.support.queue(user: "agent1").map(\.json) == [[
            "ticketId": "T1", "customer": "cust", "waitingSinceMs": .int64(t0), "waitMs": .int64(59_000),
            "assignedAgentId": .null, "unattended": false,
        ]])
        f.world.advance(.seconds(1))
        try await w.watchOnce()
        try await w.watchOnce()
        f.world.advance(.seconds(30))
        try await w.watchOnce()
        let notices = named(f, .ticketUnattended)
        #expect(notices.map(\.channel) == ["private-room-ticket_T1", "private-support-queue"])
        #expect(notices.first?.data == [
            "ticketId": "T1", "customer": "cust", "waitingSinceMs": .int64(t0), "waitMs": .int64(60_000), "assignedAgentId": .null,
        ])
        #expect(try await f.support.queue(user: "boss").map(\.answer.notified) == [true])

        // An agent joins: ticket-attended with the wait, the queue is empty.
        _ = try await f.support.join(ticket: "T1", user: "agent1", role: .agent)
        let attended = named(f, .ticketAttended)
        #expect(attended.map(\.channel) == ["private-room-ticket_T1", "private-support-queue"])
        #expect(attended.first?.data == ["ticketId": "T1", "waitingSinceMs": .int64(t0), "waitMs": .int64(90_000), "wasUnattended": true])
        #expect(try await f.support.queue(user: "agent1").isEmpty)

        // The agent leaves while the customer stays: a new episode with its own notice.
        f.world.advance(.seconds(5))
        try await f.support.leave(ticket: "T1", user: "agent1")
        let t1 = f.world.now
        f.world.advance(.seconds(61))
        try await w.watchOnce()
        #expect(named(f, .ticketUnattended).count == 4)
        #expect(named(f, .ticketUnattended).last?.data["waitingSinceMs"] == .int64(t1))

        // The customer leaves: the episode ends with no ticket-attended; nothing more is sent.
        try await f.support.leave(ticket: "T1", user: "cust")
        f.world.advance(.seconds(120))
        try await w.watchOnce()
        #expect(named(f, .ticketUnattended).count == 4 && named(f, .ticketAttended).count == 2)
        #expect(try await f.support.queue(user: "agent1").isEmpty)
        #expect(f.world.withState { $0.waitingIndex.isEmpty && $0.waiting.isEmpty })
    }

    @Test func aWorkerThatDiesBetweenTheJoinAndItsStepLeavesTheNoticeLateNotLost() async throws {
        var settings = SupportSettings()
        settings.unattendedAfter = .seconds(60)
        settings.presenceTTL = .seconds(600)
        let f = Fixture(supportSettings: settings)
        try await f.register("cust")
        let w = watcher(f)
        _ = try await f.support.tickets.open(room: "ticket_T9", ticket: "T9", user: "cust", asCustomer: true, isAgent: false)
        // What `join` does up to the presence change; the worker dies before its waiting step.
        await f.support.registerWaiting(room: "ticket_T9")
        _ = try await f.support.presence.join(
            room: "ticket_T9", user: "cust", ttl: settings.presenceTTL, state: SupportMember.state(role: .customer, typing: false)
        )
        #expect(f.world.withState { $0.waiting.isEmpty })
        // The watcher's look at the registered time starts the episode from the ticket's state; its notice follows
        // a full wait later, once.
        f.world.advance(.seconds(60))
        try await w.watchOnce()
        #expect(named(f, .ticketUnattended).isEmpty && f.world.withState { $0.waiting["ticket_T9"] != nil })
        f.world.advance(.seconds(60))
        try await w.watchOnce()
        try await w.watchOnce()
        #expect(named(f, .ticketUnattended).map(\.channel) == ["private-room-ticket_T9", "private-support-queue"])
    }

    @Test func observersDoNotCountAdminsDoAndTheQueueIsLongestFirst() async throws {
        let f = Fixture()
        try await f.register("cust", "cust2", "agent1")
        try await f.support.addAgent("agent1", by: "boss")
        _ = try await f.support.join(ticket: "A", user: "cust", role: .customer)
        f.world.advance(.seconds(1))
        _ = try await f.support.join(ticket: "B", user: "cust2", role: .customer)
        _ = try await f.support.join(ticket: "B", user: "agent1", role: .observer)
        f.world.advance(.seconds(1))
        _ = try await f.support.join(ticket: "C", user: "cust", role: .customer)
        _ = try await f.support.join(ticket: "C", user: "boss", role: .agent)
        #expect(try await f.support.queue(user: "agent1").map(\.ticketId) == ["A", "B"])
        // A customer whose presence ran out no longer waits, before the sweeper claims it; a close ends the episode.
        f.world.advance(.seconds(43))
        #expect(try await f.support.queue(user: "agent1").map(\.ticketId) == ["B"])
        _ = try await f.support.close(ticket: "B", user: "agent1", deleteHistory: false, deleteSnapshot: false)
        #expect(try await f.support.queue(user: "agent1").isEmpty)
        // Only C's episode ended by an agent (the admin, at once); B's close sends nothing.
        #expect(named(f, .ticketAttended).map(\.channel) == ["private-room-ticket_C", "private-support-queue"])
        // Agents and admins only.
        #expect(await domainError { _ = try await f.support.queue(user: "cust") } == .forbidden("Forbidden"))
    }
}
