@testable import PresenceRealtime
import AsyncTestSupport
import Testing

/// ``HubMaintenance`` driven by a registry of its own (``FakeHubHost``), with in-memory occupancy and presence whose
/// refresh can be held: what a leave does while a refresh is in flight.
@Suite("Hub maintenance")
struct HubMaintenanceTests {
    /// Occupancy refreshed in batches of 2 while, with the first batch held, one socket of that batch and one of a
    /// later batch leave: neither is refreshed or touched again (the held batch finds the left entry gone and the
    /// registry refuses its restore; the later batch leaves it out), and their last write is their removal.
    @Test func aLeaveDuringAnOccupancyRefreshDoesNotReAddTheSocketThatLeft() async throws {
        let host = FakeHubHost()
        await host.open("a", ["room-a": .none, "room-b": .none])
        await host.open("b", ["room-b": .none, "room-c": .none])
        await host.open("c", ["room-c": .none])
        let plan = await host.subscriptionEntries()
        #expect(plan.map { "\($0.socket) \($0.channel)" } == ["a room-a", "a room-b", "b room-b", "b room-c", "c room-c"])

        host.occupancy.gate.arm()
        let refresh = Task { await host.maintenance(batchSize: 2).refreshOccupancy() }
        await host.occupancy.gate.entered()  // the first batch (a's two) is held before it writes
        await host.leave("a", channel: "room-b")  // in the held batch
        await host.leave("b", channel: "room-c")  // in a later batch
        host.occupancy.gate.release()
        await refresh.value

        let writes = host.occupancy.writes
        for (socket, channel) in [("a", "room-b"), ("b", "room-c")] {
            let own = writes.filter {
                switch $0 {
                case .touch(channel, socket), .refresh(channel, socket), .remove(channel, socket): return true
                default: return false
                }
            }
            #expect(own.last == .remove(channel: channel, socket: socket), "\(socket) on \(channel): \(own)")
            #expect(own.filter { $0 != .touch(channel: channel, socket: socket) }.count == 1, "\(socket) on \(channel): \(own)")
        }
        #expect(host.occupancy.sockets(on: "room-b") == ["b"])
        #expect(host.occupancy.sockets(on: "room-c") == ["c"])
        #expect(writes.contains(.refresh(channel: "room-a", socket: "a")) && writes.contains(.refresh(channel: "room-c", socket: "c")))
    }

    /// Presence refreshed in batches of one entry while, with the first batch held, its socket leaves, and a socket of
    /// a later batch leaves too: the held entry, answered as lapsed, is not restored, and the later one is not sent.
    @Test func aLeaveDuringAPresenceRefreshDoesNotRestoreOrRefreshTheSocketThatLeft() async throws {
        let host = FakeHubHost()
        await host.open("a", ["presence-x": "alice"])
        await host.open("b", ["presence-x": "bob"])
        await host.open("c", ["presence-x": "carol"])

        host.presenceGate.arm()
        let refresh = Task { await host.maintenance(batchSize: 2).refreshPresence() }
        await host.presenceGate.entered()  // a's entry is held before it reaches "Redis"
        await host.leave("a", channel: "presence-x")
        await host.leave("b", channel: "presence-x")
        host.presenceGate.release()
        await refresh.value

        #expect(await host.restored.isEmpty)
        #expect(await host.presenceRefreshed == ["presence-x/carol/c"])
        #expect(await host.presence == ["presence-x/carol/c"])
    }

    /// An entry that lapsed while its socket is still here (a stall, Redis restarted empty) is put back.
    @Test func aLapsedEntryOfASocketStillHereIsRestored() async throws {
        let host = FakeHubHost()
        await host.open("a", ["room-a": .none])
        _ = try await host.occupancy.remove(channel: "room-a", socket: "a")  // lapsed in "Redis"
        await host.maintenance(batchSize: 4).refreshOccupancy()
        #expect(host.occupancy.sockets(on: "room-a") == ["a"])
    }

    /// Memory is handed back only after many subscriptions ended and the counts held still for a tick, then once more
    /// a little later.
    @Test func memoryIsHandedBackOnceTheDropHasSettled() {
        var trim = HubMaintenance.MemoryTrim()
        let start = ContinuousClock.now
        #expect(trim.tick(subscriptions: 3000, peak: 3000, sockets: 100, now: start) == .init())
        // Falling: not yet.
        #expect(trim.tick(subscriptions: 1200, peak: 3000, sockets: 40, now: start) == .init())
        #expect(trim.tick(subscriptions: 1000, peak: 3000, sockets: 30, now: start) == .init())
        // Settled for a tick: compact and trim.
        #expect(trim.tick(subscriptions: 1000, peak: 3000, sockets: 30, now: start) == .init(compact: true))
        #expect(trim.tick(subscriptions: 1000, peak: 1000, sockets: 30, now: start + .seconds(1)) == .init())
        #expect(trim.tick(subscriptions: 1000, peak: 1000, sockets: 30, now: start + HubMaintenance.MemoryTrim.again) == .init(trim: true))
        // A drop smaller than the threshold never compacts.
        var small = HubMaintenance.MemoryTrim()
        for _ in 0..<3 { #expect(small.tick(subscriptions: 100, peak: 900, sockets: 1, now: start) == .init()) }
    }
}
