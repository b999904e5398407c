import PresenceCore
@testable import PresenceRealtime
import Testing

/// The boundary between a recoverable subscription's catch-up and its live events: nothing lost, nothing twice.
struct RecoveryGatesTests {
    let e = "epoch-1"

    @Test func anUngatedSocketGetsEveryEvent() {
        var gates = RecoveryGates<String>()
        #expect(!gates.isGated("room-x"))
        let r1 = gates.admit("a", offset: 1, epoch: e, socket: "s1", channel: "room-x")
        #expect(r1)
    }

    @Test func liveEventsWhileHeldAreKeptAndOnlyThoseAfterThePositionGoOutOnRelease() {
        var gates = RecoveryGates<String>()
        gates.hold(socket: "s1", channel: "room-x")
        #expect(gates.isGated("room-x"))
        // 4 and 5 were published before the read (the catch-up has them), 6 after it.
        for (frame, offset) in [("f4", 4), ("f5", 5), ("f6", 6)] {
            let r2 = gates.admit(frame, offset: offset, epoch: e, socket: "s1", channel: "room-x")
            #expect(!r2)
        }
        // Another socket on the channel is not held.
        let r3 = gates.admit("f6", offset: 6, epoch: e, socket: "s2", channel: "room-x")
        #expect(r3)
        let r4 = gates.release(socket: "s1", channel: "room-x", at: ChannelPosition(epoch: e, offset: 5))
        #expect(r4 == ["f6"])
        // 6 came through already: the gate is gone and later events go straight out.
        #expect(!gates.isGated("room-x"))
        let r5 = gates.admit("f7", offset: 7, epoch: e, socket: "s1", channel: "room-x")
        #expect(r5)
    }

    @Test func anEventPublishedBeforeTheReadThatArrivesAfterTheReleaseIsDroppedByTheFloor() {
        var gates = RecoveryGates<String>()
        gates.hold(socket: "s1", channel: "room-x")
        let r6 = gates.release(socket: "s1", channel: "room-x", at: ChannelPosition(epoch: e, offset: 9))
        #expect(r6.isEmpty)
        #expect(gates.isGated("room-x"))
        // 8 and 9 are in the catch-up already (or before what the client asked for).
        let r7 = gates.admit("f8", offset: 8, epoch: e, socket: "s1", channel: "room-x")
        #expect(!r7)
        let r8 = gates.admit("f9", offset: 9, epoch: e, socket: "s1", channel: "room-x")
        #expect(!r8)
        let r9 = gates.admit("f10", offset: 10, epoch: e, socket: "s1", channel: "room-x")
        #expect(r9)
        #expect(!gates.isGated("room-x"))
    }

    @Test func anEventOfAnotherEpochAlwaysGoesThrough() {
        var gates = RecoveryGates<String>()
        gates.hold(socket: "s1", channel: "room-x")
        let r10 = gates.admit("new1", offset: 1, epoch: "epoch-2", socket: "s1", channel: "room-x")
        #expect(!r10)
        let r11 = gates.release(socket: "s1", channel: "room-x", at: ChannelPosition(epoch: e, offset: 40))
        #expect(r11 == ["new1"])
        gates.hold(socket: "s1", channel: "room-y")
        _ = gates.release(socket: "s1", channel: "room-y", at: ChannelPosition(epoch: e, offset: 40))
        let r12 = gates.admit("new2", offset: 2, epoch: "epoch-2", socket: "s1", channel: "room-y")
        #expect(r12)
    }

    @Test func aReleaseWithoutAPositionSendsEverythingKept() {
        var gates = RecoveryGates<String>()
        gates.hold(socket: "s1", channel: "room-x")
        let r13 = gates.admit("f1", offset: 1, epoch: e, socket: "s1", channel: "room-x")
        #expect(!r13)
        let r14 = gates.admit("f2", offset: 2, epoch: e, socket: "s1", channel: "room-x")
        #expect(!r14)
        let r15 = gates.release(socket: "s1", channel: "room-x", at: nil)
        #expect(r15 == ["f1", "f2"])
        #expect(gates.count == 0)
    }

    @Test func anEventWithoutAnOffsetIsNotHeld() {
        var gates = RecoveryGates<String>()
        gates.hold(socket: "s1", channel: "room-x")
        let r16 = gates.admit("plain", offset: nil, epoch: nil, socket: "s1", channel: "room-x")
        #expect(r16)
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
        let r17 = gates.release(socket: "s1", channel: "room-x", at: ChannelPosition(epoch: e, offset: 1))
        #expect(r17.isEmpty)
    }

    @Test func aGapHoldsEverySocketNotHeldYetAndAnswersTheFloorOfOneReleasedLately() {
        var gates = RecoveryGates<String>()
        // s1 subscribed lately: released at 8, its floor still there. s2 is being caught up. s3 has no gate.
        gates.hold(socket: "s1", channel: "room-x")
        _ = gates.release(socket: "s1", channel: "room-x", at: ChannelPosition(epoch: e, offset: 8))
        gates.hold(socket: "s2", channel: "room-x")
        let first = gates.holdForGap(socket: "s1", channel: "room-x")
        #expect(first.held && first.floor == ChannelPosition(epoch: e, offset: 8))
        let second = gates.holdForGap(socket: "s2", channel: "room-x")
        #expect(!second.held && second.floor == nil)
        let third = gates.holdForGap(socket: "s3", channel: "room-x")
        #expect(third.held && third.floor == nil)
        // s1 is held now: the event that showed the gap waits for the fill, which releases it past the gap.
        let kept = gates.admit("f11", offset: 11, epoch: e, socket: "s1", channel: "room-x")
        #expect(!kept)
        #expect(gates.release(socket: "s1", channel: "room-x", at: ChannelPosition(epoch: e, offset: 11)).isEmpty)
        let late = gates.admit("f11", offset: 11, epoch: e, socket: "s1", channel: "room-x")
        #expect(!late)
    }

    @Test func aPositionSeesSkippedOffsetsInItsEpochAndAfterNoHistory() {
        let at5 = ChannelPosition(epoch: e, offset: 5)
        #expect(!at5.skips(to: 6, epoch: e) && at5.skips(to: 7, epoch: e))
        #expect(!at5.skips(to: 9, epoch: "epoch-2"), "another epoch goes through (its history was lost)")
        let none = ChannelPosition(epoch: "none", offset: 0)
        #expect(!none.skips(to: 1, epoch: e) && none.skips(to: 3, epoch: e))
    }

    @Test func aSkipRightAfterAFloorHoldsTheSocketAndRecordsItsGap() {
        var gates = RecoveryGates<String>()
        gates.hold(socket: "s1", channel: "room-x")
        _ = gates.release(socket: "s1", channel: "room-x", at: ChannelPosition(epoch: e, offset: 5))
        // 6 never came (the feed lost it while the subscribe was caught up): 7 is held, the gap recorded from 5.
        let skipped = gates.admit("f7", offset: 7, epoch: e, socket: "s1", channel: "room-x")
        #expect(!skipped)
        let held = gates.admit("f8", offset: 8, epoch: e, socket: "s1", channel: "room-x")
        #expect(!held)
        let gaps = gates.takeGaps()
        #expect(gaps.count == 1 && gaps.first?.socket == "s1" && gaps.first?.from == ChannelPosition(epoch: e, offset: 5))
        #expect(gates.takeGaps().isEmpty && !gates.hasGaps)
        // The fill read up to 7: 8 goes out after it.
        #expect(gates.release(socket: "s1", channel: "room-x", at: ChannelPosition(epoch: e, offset: 7)) == ["f8"])
        #expect(!gates.hasGaps)
        // After no history, any first event past offset 1 is a skip; offset 1 is not.
        gates.hold(socket: "s2", channel: "room-y")
        _ = gates.release(socket: "s2", channel: "room-y", at: ChannelPosition(epoch: "none", offset: 0))
        let first = gates.admit("g1", offset: 1, epoch: e, socket: "s2", channel: "room-y")
        #expect(first)
        gates.hold(socket: "s3", channel: "room-y")
        _ = gates.release(socket: "s3", channel: "room-y", at: ChannelPosition(epoch: "none", offset: 0))
        let later = gates.admit("g2", offset: 2, epoch: e, socket: "s3", channel: "room-y")
        #expect(!later && gates.takeGaps().map(\.socket) == ["s3"])
    }

    @Test func aReleaseWhoseFirstKeptEventIsNotTheNextOneKeepsHoldingAndRecordsTheGap() {
        var gates = RecoveryGates<String>()
        gates.hold(socket: "s1", channel: "room-x")
        for (frame, offset) in [("f4", 4), ("f7", 7)] { _ = gates.admit(frame, offset: offset, epoch: e, socket: "s1", channel: "room-x") }
        // Read at 5; 6 was lost on the way: nothing goes out yet.
        #expect(gates.release(socket: "s1", channel: "room-x", at: ChannelPosition(epoch: e, offset: 5)).isEmpty)
        #expect(gates.takeGaps().map(\.from) == [ChannelPosition(epoch: e, offset: 5)])
        #expect(gates.isGated(socket: "s1", channel: "room-x"))
        // Filled up to 7: nothing kept is beyond it.
        #expect(gates.release(socket: "s1", channel: "room-x", at: ChannelPosition(epoch: e, offset: 7)).isEmpty)
        // Not checking (Redis did not answer the fill): what is kept goes out as it is.
        gates.hold(socket: "s2", channel: "room-x")
        _ = gates.admit("f9", offset: 9, epoch: e, socket: "s2", channel: "room-x")
        #expect(gates.release(socket: "s2", channel: "room-x", at: ChannelPosition(epoch: e, offset: 7), checkingGaps: false) == ["f9"])
        #expect(!gates.hasGaps)
    }

    @Test func theSocketsOwnClientEventsCountAsSeenNotAsAGap() {
        var gates = RecoveryGates<String>()
        // Released at 5; its own client event takes 6 (not sent back to it); 7 from someone else goes out.
        gates.hold(socket: "s1", channel: "presence-room-x")
        _ = gates.release(socket: "s1", channel: "presence-room-x", at: ChannelPosition(epoch: e, offset: 5))
        gates.ownEvent(socket: "s1", channel: "presence-room-x", offset: 6, epoch: e)
        let next = gates.admit("f7", offset: 7, epoch: e, socket: "s1", channel: "presence-room-x")
        #expect(next && !gates.hasGaps)
        // While held: its own event is kept without a frame, so the release sees 6 then 7, no gap, and sends only 7.
        gates.hold(socket: "s2", channel: "presence-room-x")
        gates.ownEvent(socket: "s2", channel: "presence-room-x", offset: 6, epoch: e)
        _ = gates.admit("f7", offset: 7, epoch: e, socket: "s2", channel: "presence-room-x")
        #expect(gates.release(socket: "s2", channel: "presence-room-x", at: ChannelPosition(epoch: e, offset: 5)) == ["f7"])
        #expect(!gates.hasGaps)
    }
}
