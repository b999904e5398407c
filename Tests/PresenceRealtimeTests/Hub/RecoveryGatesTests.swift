import PresenceCore
@testable import PresenceRealtime
import Testing

/// The boundary between a recoverable subscription's catch-up and its live events: nothing lost, nothing twice.
struct RecoveryGatesTests {
    let e = "epoch-1"

    @Test func anUngatedSocketGetsEveryEvent() {
        var gates = RecoveryGates<String>()
        #expect(!gates.isGated("room-x"))
        #expect(gates.admit("a", offset: 1, epoch: e, socket: "s1", channel: "room-x"))
    }

    @Test func liveEventsWhileHeldAreKeptAndOnlyThoseAfterThePositionGoOutOnRelease() {
        var gates = RecoveryGates<String>()
        gates.hold(socket: "s1", channel: "room-x")
        #expect(gates.isGated("room-x"))
        // 4 and 5 were published before the read (the catch-up has them), 6 after it.
        for (frame, offset) in [("f4", 4), ("f5", 5), ("f6", 6)] {
            #expect(!gates.admit(frame, offset: offset, epoch: e, socket: "s1", channel: "room-x"))
        }
        // Another socket on the channel is not held.
        #expect(gates.admit("f6", offset: 6, epoch: e, socket: "s2", channel: "room-x"))
        #expect(gates.release(socket: "s1", channel: "room-x", at: ChannelPosition(epoch: e, offset: 5)) == ["f6"])
        // 6 came through already: the gate is gone and later events go straight out.
        #expect(!gates.isGated("room-x"))
        #expect(gates.admit("f7", offset: 7, epoch: e, socket: "s1", channel: "room-x"))
    }

    @Test func anEventPublishedBeforeTheReadThatArrivesAfterTheReleaseIsDroppedByTheFloor() {
        var gates = RecoveryGates<String>()
        gates.hold(socket: "s1", channel: "room-x")
        #expect(gates.release(socket: "s1", channel: "room-x", at: ChannelPosition(epoch: e, offset: 9)).isEmpty)
        #expect(gates.isGated("room-x"))
        // 8 and 9 are in the catch-up already (or before what the client asked for).
        #expect(!gates.admit("f8", offset: 8, epoch: e, socket: "s1", channel: "room-x"))
        #expect(!gates.admit("f9", offset: 9, epoch: e, socket: "s1", channel: "room-x"))
        #expect(gates.admit("f10", offset: 10, epoch: e, socket: "s1", channel: "room-x"))
        #expect(!gates.isGated("room-x"))
    }

    @Test func anEventOfAnotherEpochAlwaysGoesThrough() {
        var gates = RecoveryGates<String>()
        gates.hold(socket: "s1", channel: "room-x")
        #expect(!gates.admit("new1", offset: 1, epoch: "epoch-2", socket: "s1", channel: "room-x"))
        #expect(gates.release(socket: "s1", channel: "room-x", at: ChannelPosition(epoch: e, offset: 40)) == ["new1"])
        gates.hold(socket: "s1", channel: "room-y")
        _ = gates.release(socket: "s1", channel: "room-y", at: ChannelPosition(epoch: e, offset: 40))
        #expect(gates.admit("new2", offset: 2, epoch: "epoch-2", socket: "s1", channel: "room-y"))
    }

    @Test func aReleaseWithoutAPositionSendsEverythingKept() {
        var gates = RecoveryGates<String>()
        gates.hold(socket: "s1", channel: "room-x")
        #expect(!gates.admit("f1", offset: 1, epoch: e, socket: "s1", channel: "room-x"))
        #expect(!gates.admit("f2", offset: 2, epoch: e, socket: "s1", channel: "room-x"))
        #expect(gates.release(socket: "s1", channel: "room-x", at: nil) == ["f1", "f2"])
        #expect(gates.count == 0)
    }

    @Test func anEventWithoutAnOffsetIsNotHeld() {
        var gates = RecoveryGates<String>()
        gates.hold(socket: "s1", channel: "room-x")
        #expect(gates.admit("plain", offset: nil, epoch: nil, socket: "s1", channel: "room-x"))
    }

    @Test func aSocketThatLeavesOrClosesTakesItsGatesAlong() {
        var gates = RecoveryGates<String>()
        gates.hold(socket: "s1", channel: "room-x")
        gates.hold(socket: "s1", channel: "room-y")
        gates.hold(socket: "s2", channel: "room-y")
        gates.remove(socket: "s1", channel: "room-x")
        #expect(!gates.isGated("room-x"))
        gates.remove(socket: "s1", channels: ["room-y"])
        #expect(gates.count == 1)
        // A release after the socket left changes nothing and sends nothing.
        #expect(gates.release(socket: "s1", channel: "room-x", at: ChannelPosition(epoch: e, offset: 1)).isEmpty)
    }
}
