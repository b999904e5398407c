@testable import PresenceRealtime
import Testing

/// ``HubRegistry`` as a plain value: events in, actions out; no sockets, feed or Redis.
@Suite("Hub registry")
struct HubRegistryTests {
    typealias Registry = HubRegistry<String>
    typealias Action = HubAction<String>

    /// A registry with these sockets open (their ids are their values).
    static func registry(_ ids: String...) -> Registry {
        var registry = Registry()
        for id in ids { _ = registry.add(id, id: id) }
        return registry
    }

    static func joined(_ result: Registry.JoinResult) -> [Action]? {
        if case .joined(let actions) = result { return actions }
        return nil
    }

    static func ticket(of actions: [Action], subscribe: Bool) -> UInt64? {
        for action in actions {
            switch action {
            case .subscribeFeed(_, let ticket) where subscribe: return ticket
            case .unsubscribeFeed(_, let ticket) where !subscribe: return ticket
            default: continue
            }
        }
        return nil
    }

    static func feedRequests(_ actions: [Action]) -> [String] {
        actions.compactMap { action in
            switch action {
            case .subscribeFeed(.channel(let channel), _): return "+\(channel)"
            case .unsubscribeFeed(.channel(let channel), _): return "-\(channel)"
            default: return nil
            }
        }
    }

    // MARK: - Sockets

    @Test func theFirstSocketSubscribesTheControlChannel() {
        var registry = Registry()
        guard case .admitted(let first) = registry.add("a", id: "a"), case .admitted(let second) = registry.add("b", id: "b") else {
            Issue.record("refused while running")
            return
        }
        #expect(first.count == 1)
        if case .subscribeFeed(.control, _)? = first.first {} else { Issue.record("no control subscribe: \(first)") }
        #expect(second.isEmpty)
    }

    @Test func aRemovedSocketsJoinEndsAndARemoveTwiceAnswersNothing() {
        var registry = Self.registry("a")
        _ = registry.remove("a", channels: [:])
        if case .ended = registry.join(socket: "a", channel: "room-x", held: true) {} else { Issue.record("a removed socket joined") }
        #expect(registry.remove("a", channels: ["room-x": .none]).isEmpty)
        #expect(registry.channels.isEmpty)
    }

    // MARK: - Reference counting of feed subscriptions

    @Test func theFirstJoinSubscribesTheFeedAndTheLastLeaveUnsubscribesIt() throws {
        var registry = Self.registry("a", "b")
        let first = try #require(Self.joined(registry.join(socket: "a", channel: "room-x", held: true)))
        #expect(Self.feedRequests(first) == ["+room-x"])
        #expect(first.last == .touchOccupancy(channel: "room-x", socket: "a"))
        let second = try #require(Self.joined(registry.join(socket: "b", channel: "room-x", held: true)))
        #expect(second == [.touchOccupancy(channel: "room-x", socket: "b")])
        // Joining again changes nothing but the occupancy's refresh.
        #expect(Self.feedRequests(try #require(Self.joined(registry.join(socket: "b", channel: "room-x", held: true)))).isEmpty)
        #expect(registry.subscriptionCount == 2 && registry.activeChannelCount == 1)

        #expect(registry.leave(socket: "a", channel: "room-x", user: nil) == [.removeOccupancy(channel: "room-x", socket: "a")])
        let last = registry.leave(socket: "b", channel: "room-x", user: nil)
        #expect(Self.feedRequests(last) == ["-room-x"])
        #expect(last.last == .removeOccupancy(channel: "room-x", socket: "b"))
        #expect(registry.subscriptionCount == 0 && registry.activeChannelCount == 0)
        registry.feedUnsubscribed(.channel("room-x"), ticket: try #require(Self.ticket(of: last, subscribe: false)))
        #expect(registry.channels["room-x"] == nil)
        #expect(registry.peakSubscriptions == 2)
    }

    @Test func aRejoinWhileTheUnsubscribeIsPendingSubscribesAgainAndTheLateConfirmationKeepsTheChannel() throws {
        var registry = Self.registry("a", "b")
        let join = try #require(Self.joined(registry.join(socket: "a", channel: "room-x", held: true)))
        registry.feedSubscribed(.channel("room-x"), ticket: try #require(Self.ticket(of: join, subscribe: true)))
        #expect(registry.channels["room-x"]?.feed == .subscribed)
        let leave = registry.leave(socket: "a", channel: "room-x", user: nil)
        let unsubscribe = try #require(Self.ticket(of: leave, subscribe: false))
        // The unsubscribe is in flight: a new join subscribes again (queued after it by the feed).
        let rejoin = try #require(Self.joined(registry.join(socket: "b", channel: "room-x", held: true)))
        #expect(Self.feedRequests(rejoin) == ["+room-x"])
        let resubscribe = try #require(Self.ticket(of: rejoin, subscribe: true))
        registry.feedUnsubscribed(.channel("room-x"), ticket: unsubscribe)
        #expect(registry.members(of: "room-x") == ["b"])
        #expect(registry.channels["room-x"]?.feed == .subscribing(ticket: resubscribe))
        registry.feedSubscribed(.channel("room-x"), ticket: resubscribe)
        #expect(registry.channels["room-x"]?.feed == .subscribed)
        #expect(registry.activeChannelCount == 1)
    }

    @Test func aLeaveWhileTheSubscribeIsPendingUnsubscribesAndTheLateConfirmationChangesNothing() throws {
        var registry = Self.registry("a")
        let join = try #require(Self.joined(registry.join(socket: "a", channel: "room-x", held: true)))
        let subscribe = try #require(Self.ticket(of: join, subscribe: true))
        let leave = registry.leave(socket: "a", channel: "room-x", user: nil)
        #expect(Self.feedRequests(leave) == ["-room-x"])
        registry.feedSubscribed(.channel("room-x"), ticket: subscribe)  // overtaken by the unsubscribe
        #expect(registry.channels["room-x"]?.feed == .unsubscribing(ticket: try #require(Self.ticket(of: leave, subscribe: false))))
        registry.feedUnsubscribed(.channel("room-x"), ticket: try #require(Self.ticket(of: leave, subscribe: false)))
        #expect(registry.channels.isEmpty)
    }

    // MARK: - Races

    /// Access is revoked while a subscribe is in flight: either before its join reaches the hub (the revocation took
    /// the channel from the socket: the join ends with nothing recorded), or while the join's feed subscribe and
    /// occupancy write are on their way (the revocation's leave unsubscribes the feed, it was the last; the late
    /// subscribe confirmation does not bring it back; the occupancy write is taken back).
    @Test func aRevocationDuringASubscribeLeavesTheSocketUnsubscribedAndTheFeedUnsubscribedIfItWasTheLast() throws {
        var registry = Self.registry("a", "b")
        // Revoked between the access check and the join: the socket no longer holds the channel.
        if case .ended = registry.join(socket: "a", channel: "private-x", held: false) {} else { Issue.record("a revoked subscription joined") }
        #expect(registry.channels["private-x"] == nil && registry.subscriptionCount == 0)

        // Revoked while the join's feed subscribe is in flight.
        let join = try #require(Self.joined(registry.join(socket: "a", channel: "private-x", held: true)))
        let subscribe = try #require(Self.ticket(of: join, subscribe: true))
        let revoke = registry.leave(socket: "a", channel: "private-x", user: "alice")
        #expect(Self.feedRequests(revoke) == ["-private-x"])
        #expect(revoke.contains(.removePresence(channel: "private-x", user: "alice", socket: "a")))
        registry.feedSubscribed(.channel("private-x"), ticket: subscribe)
        // The join's occupancy write, on its way during the revocation, is taken back.
        #expect(registry.joinSettled(socket: "a", channel: "private-x") == [.removeOccupancy(channel: "private-x", socket: "a")])
        registry.feedUnsubscribed(.channel("private-x"), ticket: try #require(Self.ticket(of: revoke, subscribe: false)))
        #expect(registry.channels["private-x"] == nil)
        #expect(!registry.isSubscribed(socket: "a", channel: "private-x"))
        #expect(registry.deliver(on: "private-x").isEmpty)

        // Not the last: the feed stays subscribed for the other socket.
        _ = registry.join(socket: "a", channel: "private-y", held: true)
        _ = registry.join(socket: "b", channel: "private-y", held: true)
        #expect(Self.feedRequests(registry.leave(socket: "a", channel: "private-y", user: nil)).isEmpty)
        #expect(registry.members(of: "private-y") == ["b"])
        #expect(registry.joinSettled(socket: "b", channel: "private-y").isEmpty)
    }

    /// A leave while a refresh is under way: the refresh planned its batches before, but each batch is checked as it
    /// goes out, so the socket that left is neither refreshed nor re-added.
    @Test func aLeaveDuringARefreshIsNotInTheBatchesThatGoOutAfterIt() {
        var registry = Self.registry("a", "b", "c")
        for id in ["a", "b", "c"] { _ = registry.join(socket: id, channel: "room-\(id)", held: true) }
        _ = registry.join(socket: "a", channel: "room-b", held: true)
        let plan = registry.subscriptions.sorted { ($0.socket, $0.channel) < ($1.socket, $1.channel) }
        #expect(plan.count == 4)
        let first = registry.stillSubscribed(plan.prefix(2), channel: \.channel, socket: \.socket)
        #expect(first.count == 2)
        // While the first batch is in flight, b leaves, and a's removal takes it off both its channels.
        _ = registry.leave(socket: "b", channel: "room-b", user: nil)
        _ = registry.remove("a", channels: ["room-a": .none, "room-b": .none])
        let rest = registry.stillSubscribed(plan.dropFirst(2), channel: \.channel, socket: \.socket)
        #expect(rest.map(\.socket) == ["c"])
        // A lapsed entry of the first batch whose socket left is not restored.
        #expect(!registry.isSubscribed(socket: "a", channel: "room-a"))
    }

    /// A client too slow to read: its outbound backlog passes the limit and the socket is closed (4100); when its
    /// connection is gone it leaves every channel (the feed unsubscribed where it was the last, its occupancy and
    /// presence removed), and events go on reaching the others.
    @Test func aSlowConsumerIsClosedAndLeavesItsChannels() throws {
        var backlog = OutboundBacklog<String>(limit: 3)
        if case .write = backlog.offer("e0", writable: true) {} else { Issue.record("a writable socket queued") }
        var offers: [String] = []
        for n in 1...4 {
            switch backlog.offer("e\(n)", writable: false) {
            case .write: offers.append("write")
            case .queued: offers.append("queued")
            case .overCapacity: offers.append("over")
            }
        }
        #expect(offers == ["queued", "queued", "queued", "over"])
        #expect(backlog.isEmpty)

        var registry = Self.registry("slow", "fast")
        _ = registry.join(socket: "slow", channel: "presence-x", held: true)
        _ = registry.join(socket: "slow", channel: "room-y", held: true)
        _ = registry.join(socket: "fast", channel: "room-y", held: true)
        let left = registry.remove("slow", channels: ["presence-x": .some("alice"), "room-y": .none])
        #expect(Self.feedRequests(left) == ["-presence-x"])
        #expect(left.contains(.removePresence(channel: "presence-x", user: "alice", socket: "slow")))
        #expect(left.contains(.removeOccupancy(channel: "presence-x", socket: "slow")))
        #expect(left.contains(.removeOccupancy(channel: "room-y", socket: "slow")))
        #expect(registry.deliver(on: "room-y") == [.deliver(channel: "room-y", to: ["fast"])])
        #expect(registry.deliver(on: "presence-x").isEmpty)
        #expect(registry.removing == ["slow"])
        #expect(registry.removalFinished("slow").isEmpty)
    }

    /// A drain refuses new sockets, closes the open ones with 4200, and completes when the last is gone and its leaves
    /// are done; a second drain does nothing.
    @Test func aDrainRefusesNewSocketsClosesAllWith4200AndCompletesWhenTheLastLeaves() {
        var registry = Self.registry("a", "b")
        _ = registry.join(socket: "a", channel: "room-x", held: true)
        let drain = registry.drain(grace: .seconds(2))
        #expect(drain == [
            .close("a", code: 4200, reason: "Server shutting down", grace: .seconds(2)),
            .close("b", code: 4200, reason: "Server shutting down", grace: .seconds(2)),
        ])
        #expect(registry.lifecycle == .draining)
        if case .refused = registry.add("c", id: "c") {} else { Issue.record("a socket was taken while draining") }
        #expect(registry.drain(grace: .seconds(2)).isEmpty)

        _ = registry.remove("b", channels: [:])
        #expect(registry.removalFinished("b").isEmpty)
        let leaves = registry.remove("a", channels: ["room-x": .none])
        #expect(Self.feedRequests(leaves) == ["-room-x"])
        #expect(registry.lifecycle == .draining)  // a's leaves are still under way
        #expect(registry.removalFinished("a") == [.drainCompleted])
        #expect(registry.lifecycle == .drained)
        #expect(registry.removalFinished("a").isEmpty)
    }

    @Test func aDrainWithNothingOpenCompletesAtOnce() {
        var registry = Registry()
        #expect(registry.drain(grace: nil) == [.drainCompleted])
        if case .refused = registry.add("a", id: "a") {} else { Issue.record("a socket was taken after the drain") }
    }

    // MARK: - Delivery

    @Test func deliveryGoesOnlyToTheSocketsInTheChannelButTheSender() {
        var registry = Self.registry("a", "b", "c")
        _ = registry.join(socket: "a", channel: "room-x", held: true)
        _ = registry.join(socket: "b", channel: "room-x", held: true)
        _ = registry.join(socket: "c", channel: "room-y", held: true)
        guard case .deliver(let channel, let targets)? = registry.deliver(on: "room-x").first else {
            Issue.record("nothing delivered")
            return
        }
        #expect(channel == "room-x" && Set(targets) == ["a", "b"])
        #expect(registry.deliver(on: "room-x", excluding: "a") == [.deliver(channel: "room-x", to: ["b"])])
        #expect(registry.deliver(on: "room-x", excluding: "a").count == 1)
        #expect(registry.deliver(on: "room-z").isEmpty)
        _ = registry.leave(socket: "b", channel: "room-x", user: nil)
        #expect(registry.deliver(on: "room-x", excluding: "a").isEmpty)
        // A socket removed with its channel not yet left (it is being removed) gets nothing either.
        _ = registry.remove("c", channels: [:])
        #expect(registry.deliver(on: "room-y").isEmpty)
    }

    /// A channel's targets are kept between events, and answered again when a socket joins, leaves or is removed.
    @Test func keptTargetsFollowJoinsLeavesAndRemovals() {
        var registry = Self.registry("a", "b", "c")
        _ = registry.join(socket: "a", channel: "room-x", held: true)
        #expect(registry.deliver(on: "room-x") == [.deliver(channel: "room-x", to: ["a"])])
        #expect(registry.deliver(on: "room-x") == [.deliver(channel: "room-x", to: ["a"])])
        _ = registry.join(socket: "b", channel: "room-x", held: true)
        guard case .deliver(_, let both)? = registry.deliver(on: "room-x").first else {
            Issue.record("nothing delivered")
            return
        }
        #expect(Set(both) == ["a", "b"])
        #expect(registry.deliver(on: "room-x", excluding: "b") == [.deliver(channel: "room-x", to: ["a"])])
        _ = registry.leave(socket: "a", channel: "room-x", user: nil)
        #expect(registry.deliver(on: "room-x") == [.deliver(channel: "room-x", to: ["b"])])
        // Removed with room-x not yet left: gone from the kept targets at once.
        _ = registry.remove("b", channels: [:])
        #expect(registry.deliver(on: "room-x").isEmpty)
    }
}
