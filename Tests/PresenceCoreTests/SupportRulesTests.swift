import Testing
@testable import PresenceCore

@Suite("Support rules (in memory)")
struct SupportRulesTests {
    @Test func theCustomerSeatCannotBeTaken() async throws {
        let f = Fixture()
        try await f.register("cust", "outsider", "agent1")
        try await f.support.addAgent("agent1", by: "boss")
        _ = try await f.support.join(ticket: "T1", user: "cust", role: .customer)
        #expect(await domainError { _ = try await f.support.join(ticket: "T1", user: "outsider", role: .customer) } == .forbidden("Forbidden"))
        #expect(await domainError { _ = try await f.support.join(ticket: "T1", user: "outsider", role: .agent) } == .forbidden("Forbidden"))
        #expect(await domainError { _ = try await f.support.messages(ticket: "T1", user: "outsider", limit: 10, after: nil) } == .forbidden("Forbidden"))
        #expect(try await f.present(in: "ticket_T1") == ["cust"])
        // Opened by an agent with the customer named in advance: the seat is locked to them.
        _ = try await f.support.join(ticket: "T2", user: "agent1", role: .agent)
        _ = try await f.support.postMessage(ticket: "T2", user: "agent1", content: "internal note")
        _ = try await f.support.updateMetadata(ticket: "T2", user: "agent1", priority: nil, assignedAgentId: nil, status: nil, customer: "cust")
        #expect(await domainError { _ = try await f.support.join(ticket: "T2", user: "outsider", role: .customer) } == .forbidden("Forbidden"))
        #expect(try await f.support.join(ticket: "T2", user: "cust", role: .customer).role == .customer)
        #expect(f.events.accessChanges.contains(AccessChange(user: nil, channels: ["private-room-ticket_T2"])))
        // Opened by an agent's metadata (the seed's order), no customer named: the first to join as customer takes
        // the seat; nobody else after.
        _ = try await f.support.updateMetadata(ticket: "T3", user: "agent1", priority: "high", assignedAgentId: "agent1", status: "open")
        #expect(await domainError { _ = try await f.support.join(ticket: "T3", user: "outsider", role: .agent) } == .forbidden("Forbidden"))
        #expect(try await f.support.join(ticket: "T3", user: "cust", role: .customer).role == .customer)
        #expect(await domainError { _ = try await f.support.join(ticket: "T3", user: "outsider", role: .customer) } == .forbidden("Forbidden"))
        // Closed: no joins, and a refused join changes nothing.
        _ = try await f.support.close(ticket: "T1", user: "agent1", deleteHistory: false, deleteSnapshot: false)
        #expect(await domainError { _ = try await f.support.join(ticket: "T1", user: "cust", role: .customer) } == .roomClosed)
        #expect(await domainError { _ = try await f.support.join(ticket: "T1", user: "outsider", role: .customer) } == .forbidden("Forbidden"))
        #expect(await domainError { _ = try await f.support.snapshot(ticket: "T1", user: "outsider") } == .forbidden("Forbidden"))
        #expect(try await f.support.snapshot(ticket: "T1", user: "cust")["closedBy"]?.string == "agent1")
    }

    @Test func onlyAgentsAndAdminsManageTickets() async throws {
        let f = Fixture()
        try await f.register("cust", "agent1")
        #expect(await domainError { try await f.support.addAgent("agent1", by: "cust") } == .forbidden("Forbidden"))
        #expect(await domainError { _ = try await f.support.join(ticket: "T1", user: "cust", role: .agent) } == .forbidden("Forbidden"))
        _ = try await f.support.join(ticket: "T1", user: "cust", role: .customer)
        #expect(await domainError {
            _ = try await f.support.updateMetadata(ticket: "T1", user: "cust", priority: .some("high"), assignedAgentId: nil, status: nil)
        } == .forbidden("Forbidden"))
        #expect(await domainError { _ = try await f.support.close(ticket: "T1", user: "cust", deleteHistory: false, deleteSnapshot: false) }
            == .forbidden("Forbidden"))
        // Admins are agents without being listed; removing an agent ends their ticket channels.
        #expect(try await f.support.isAgent("boss"))
        try await f.support.addAgent("agent1", by: "boss")
        #expect(try await f.support.removeAgent("agent1", by: "boss"))
        #expect(f.events.accessChanges == [
            AccessChange(user: "agent1", prefix: "private-room-ticket_"),
            AccessChange(user: "agent1", channels: ["private-support-queue"]),
        ])
    }

    @Test func transcriptsRefuseRatherThanTrimAndMessagesAreLimited() async throws {
        var settings = SupportSettings()
        settings.transcriptLimit = 5
        settings.messageLimit = 4
        let f = Fixture(supportSettings: settings)
        try await f.register("cust", "agent1")
        try await f.support.addAgent("agent1", by: "boss")
        _ = try await f.support.join(ticket: "T1", user: "cust", role: .customer)
        _ = try await f.support.postMessage(ticket: "T1", user: "agent1", content: "agent note")
        for i in 1...4 { _ = try await f.support.postMessage(ticket: "T1", user: "cust", content: "c\(i)") }
        guard case .rateLimited? = await domainError({ _ = try await f.support.postMessage(ticket: "T1", user: "cust", content: "c5") }) else {
            Issue.record("the customer's fifth message was not limited")
            return
        }
        #expect(await domainError { _ = try await f.support.postMessage(ticket: "T1", user: "agent1", content: "full") }
            == .conflict("Transcript is full"))
        let transcript = try await f.support.messages(ticket: "T1", user: "agent1", limit: 10, after: nil)
        #expect(transcript.count == 5 && transcript.first?.content == "agent note" && transcript.first?.role == "agent")
    }

    @Test func attendanceListsEveryIntervalAndOnlyAgentsReadIt() async throws {
        let f = Fixture()
        try await f.register("cust", "agent1", "agent2", "outsider")
        try await f.support.addAgent("agent1", by: "boss")
        try await f.support.addAgent("agent2", by: "boss")
        let t0 = f.world.now
        _ = try await f.support.join(ticket: "T1", user: "cust", role: .customer)
        f.world.advance(.seconds(10))
        _ = try await f.support.join(ticket: "T1", user: "agent1", role: .agent)
        f.world.advance(.seconds(5))
        try await f.support.leave(ticket: "T1", user: "agent1")
        _ = try await f.support.join(ticket: "T1", user: "agent2", role: .observer)
        _ = try await f.support.heartbeat(ticket: "T1", user: "cust")
        f.world.advance(.seconds(30))
        _ = try await f.support.heartbeat(ticket: "T1", user: "cust")
        // agent2's presence runs out (45 s) and the sweeper claims it: it ends at its deadline, not at the claim.
        f.world.advance(.seconds(20))
        _ = try await f.presence.claimExpired(rooms: ["ticket_T1"])
        _ = try await f.support.join(ticket: "T1", user: "agent1", role: .agent)
        // The open intervals come after the ended ones.
        let open = try await f.support.attendance(ticket: "T1", user: "agent2")
        #expect(open.map(\.user) == ["agent1", "agent2", "cust", "agent1"])
        #expect(open.suffix(2).allSatisfy(\.isOpen) && open.suffix(2).map(\.from) == [t0, t0 + 65_000])
        f.world.advance(.seconds(1))
        _ = try await f.support.close(ticket: "T1", user: "agent1", deleteHistory: false, deleteSnapshot: false)
        _ = try await f.support.reopen(ticket: "T1", user: "agent1")
        _ = try await f.support.join(ticket: "T1", user: "cust", role: .customer)
        f.world.advance(.seconds(2))
        try await f.support.leave(ticket: "T1", user: "cust")

        let attendance = try await f.support.attendance(ticket: "T1", user: "boss")
        let expected: [(String, String, Int64, Int64, LeaveReason)] = [
            ("cust", "customer", 0, 66_000, .closed),
            ("agent1", "agent", 10_000, 15_000, .left),
            ("agent2", "observer", 15_000, 60_000, .expired),
            ("agent1", "agent", 65_000, 66_000, .closed),
            ("cust", "customer", 66_000, 68_000, .left),
        ]
        #expect(attendance == expected.map {
            AttendanceInterval(user: $0.0, role: $0.1, from: t0 + $0.2, to: t0 + $0.3, reason: $0.4)
        })
        let snapshot = try await f.support.snapshot(ticket: "T1", user: "agent1")
        #expect(snapshot["firstAgentAfterMs"]?.int == 10_000 && snapshot["agentPresentMs"]?.int == 6_000)

        // Agents and admins only; the customer too gets 403, and so does anyone on a ticket that does not exist.
        for user in ["cust", "outsider"] {
            #expect(await domainError { _ = try await f.support.attendance(ticket: "T1", user: user) } == .forbidden("Forbidden"))
        }
        #expect(await domainError { _ = try await f.support.attendance(ticket: "T404", user: "outsider") } == .forbidden("Forbidden"))
        #expect(await domainError { _ = try await f.support.attendance(ticket: "T404", user: "agent1") } == .roomNotFound)
        #expect(await domainError { _ = try await f.support.attendance(ticket: "bad id", user: "agent1") }
            == .invalid("Invalid ticket ID format"))
        // The attendance goes with the history.
        _ = try await f.support.close(ticket: "T1", user: "agent1", deleteHistory: true, deleteSnapshot: false)
        #expect(try await f.support.attendance(ticket: "T1", user: "agent1").isEmpty)
    }
}
