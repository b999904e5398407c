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
        #expect(f.events.accessChanges == [AccessChange(user: "agent1", prefix: "private-room-ticket_")])
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
}
