/// The hub's bookkeeping as a plain value: the sockets by id, which sockets are on which channel, the feed subscription
/// of each channel (with its subscribe or unsubscribe in flight), the sockets being removed and the drain. It takes
/// events (a socket added or removed, a join, a leave, a feed confirmation, a drain) and answers ``HubAction``s; it owns
/// no socket, task or connection, so its rules are tested without any (`HubRegistryTests`). ``RealtimeHub`` is its
/// driver: it feeds it what happens and performs what it answers.
///
/// The rules it keeps:
/// - A channel's feed subscription is reference-counted: the first local subscriber subscribes it, the last one's
///   leave unsubscribes it. Requests go to the feed in the order the registry answers them (the feed keeps that
///   order), so a join while the unsubscribe is in flight subscribes again, and a leave while the subscribe is in flight
///   unsubscribes; a late confirmation of a request overtaken by another (an older ticket) changes nothing.
/// - A join counts only for a socket still registered and still holding the channel: a socket removed, or a
///   subscription revoked, before the hub got to the join is not put back (``JoinResult/ended``). A join whose
///   occupancy write was on its way while the socket left takes that write back (``joinSettled(socket:channel:)``).
/// - What periodic refreshes send is checked against the registry as each batch goes out (``isSubscribed(socket:channel:)``):
///   what left meanwhile is not refreshed, so not re-added.
/// - Draining refuses new sockets, closes every socket with 4200, and completes when the last one is gone and every
///   removal's leaves are done.
package struct HubRegistry<Socket: Sendable>: Sendable {
    /// The feed subscription of one channel.
    package enum FeedState: Equatable, Sendable {
        /// Requested with this ticket, not yet confirmed.
        case subscribing(ticket: UInt64)
        /// Confirmed.
        case subscribed
        /// The last subscriber left: the unsubscribe with this ticket is in flight.
        case unsubscribing(ticket: UInt64)
    }

    /// One channel as this worker holds it.
    package struct ChannelState: Sendable {
        /// The local sockets on it.
        package var members: Set<String> = []
        /// Its feed subscription.
        package var feed: FeedState
    }

    /// Whether the hub takes sockets.
    package enum Lifecycle: Equatable, Sendable {
        /// Taking sockets.
        case running
        /// Stopping: no new socket; waiting for the open ones to go.
        case draining
        /// Stopped: every socket is gone.
        case drained
    }

    /// Whether a new socket was taken.
    package enum Admission: Sendable {
        /// Taken; perform these (the control channel's subscribe with the first socket).
        case admitted([HubAction<Socket>])
        /// Draining: the caller closes the socket with 4200.
        case refused
    }

    /// What a join comes to.
    package enum JoinResult: Sendable {
        /// On the channel; perform these (the feed's subscribe for the first local subscriber, then the occupancy).
        case joined([HubAction<Socket>])
        /// The socket is gone or no longer holds the channel: nothing recorded.
        case ended
    }

    /// The open sockets by id.
    package private(set) var sockets: [String: Socket] = [:]
    /// The channels with local subscribers, or whose unsubscribe is still in flight.
    package private(set) var channels: [String: ChannelState] = [:]
    /// Sockets removed whose channels are still being left (in Redis).
    package private(set) var removing: Set<String> = []
    /// Running, draining or drained.
    package private(set) var lifecycle = Lifecycle.running
    /// (channel, socket) subscriptions held now.
    package private(set) var subscriptionCount = 0
    /// The most subscriptions held since ``resetPeak()``.
    package private(set) var peakSubscriptions = 0
    /// Channels with at least one local subscriber.
    package private(set) var activeChannelCount = 0
    private var lastTicket: UInt64 = 0
    /// Each channel's sockets as ``deliver(on:excluding:)`` answered them, kept until the channel's members change or a
    /// socket is removed: an event costs no lookup per socket.
    private var targets: [String: [Socket]] = [:]

    /// An empty registry, running.
    package init() {}

    // MARK: - Sockets

    /// Takes a new socket, unless draining.
    package mutating func add(_ socket: Socket, id: String) -> Admission {
        guard lifecycle == .running else { return .refused }
        sockets[id] = socket
        // Access changes and sign-outs concern only workers with sockets; subscribed again whenever the first comes.
        return .admitted(sockets.count == 1 ? [.subscribeFeed(.control, ticket: nextTicket())] : [])
    }

    /// Forgets a socket and leaves `channels` (what it was on: channel → its presence user), answering each leave's
    /// actions. Its removal is in flight until ``removalFinished(_:)``. A socket not registered (removed already) answers
    /// nothing.
    package mutating func remove(_ id: String, channels left: [String: String?]) -> [HubAction<Socket>] {
        guard sockets.removeValue(forKey: id) != nil else { return [] }
        removing.insert(id)
        // Channels it is still on but not in `left` keep its id until their leave: no answer may hold it meanwhile.
        targets.removeAll(keepingCapacity: true)
        var actions: [HubAction<Socket>] = []
        for (channel, user) in left.sorted(by: { $0.key < $1.key }) {
            actions += leave(socket: id, channel: channel, user: user)
        }
        return actions
    }

    /// A removal's leaves are done; the last one while draining completes the drain.
    package mutating func removalFinished(_ id: String) -> [HubAction<Socket>] {
        removing.remove(id)
        return completeDrainIfEmpty()
    }

    // MARK: - Channels

    /// Puts `socket` on `channel`. `held`: whether the socket still holds the channel (a revocation or an unsubscribe
    /// may have taken it between the caller's registration and here).
    package mutating func join(socket id: String, channel: String, held: Bool) -> JoinResult {
        guard held, sockets[id] != nil else { return .ended }
        var actions: [HubAction<Socket>] = []
        var state = channels[channel] ?? ChannelState(feed: .unsubscribing(ticket: 0))
        let (inserted, _) = state.members.insert(id)
        if inserted {
            targets[channel] = nil
            subscriptionCount += 1
            peakSubscriptions = max(peakSubscriptions, subscriptionCount)
            if state.members.count == 1 {
                activeChannelCount += 1
                // Not subscribed, or its unsubscribe is in flight: subscribe (again), queued after that unsubscribe.
                if case .unsubscribing = state.feed {
                    let ticket = nextTicket()
                    state.feed = .subscribing(ticket: ticket)
                    actions.append(.subscribeFeed(.channel(channel), ticket: ticket))
                }
            }
        }
        channels[channel] = state
        actions.append(.touchOccupancy(channel: channel, socket: id))
        return .joined(actions)
    }

    /// A join's occupancy write is done: taken back if the socket left while it was on its way (the leave's removal
    /// may have reached Redis first).
    package func joinSettled(socket id: String, channel: String) -> [HubAction<Socket>] {
        isSubscribed(socket: id, channel: channel) ? [] : [.removeOccupancy(channel: channel, socket: id)]
    }

    /// Takes `socket` off `channel` (the socket has forgotten the channel already): the feed's unsubscribe when it was
    /// the last, its occupancy, and its presence when it was on the channel as `user`.
    package mutating func leave(socket id: String, channel: String, user: String?) -> [HubAction<Socket>] {
        var actions: [HubAction<Socket>] = []
        if var state = channels[channel], state.members.remove(id) != nil {
            targets[channel] = nil
            subscriptionCount -= 1
            if state.members.isEmpty {
                activeChannelCount -= 1
                let ticket = nextTicket()
                state.feed = .unsubscribing(ticket: ticket)
                actions.append(.unsubscribeFeed(.channel(channel), ticket: ticket))
            }
            channels[channel] = state
        }
        actions.append(.removeOccupancy(channel: channel, socket: id))
        if let user { actions.append(.removePresence(channel: channel, user: user, socket: id)) }
        return actions
    }

    /// The feed confirmed (or gave up on: it subscribes again on reconnect) the subscribe with `ticket`. A confirmation
    /// overtaken by a later request changes nothing.
    package mutating func feedSubscribed(_ topic: RealtimeTopic, ticket: UInt64) {
        guard case .channel(let channel) = topic, channels[channel]?.feed == .subscribing(ticket: ticket) else { return }
        channels[channel]?.feed = .subscribed
    }

    /// The feed confirmed the unsubscribe with `ticket`: the channel is forgotten, unless a join came since.
    package mutating func feedUnsubscribed(_ topic: RealtimeTopic, ticket: UInt64) {
        guard case .channel(let channel) = topic, let state = channels[channel],
              state.feed == .unsubscribing(ticket: ticket), state.members.isEmpty else { return }
        channels[channel] = nil
    }

    /// Whether `socket` is on `channel` here.
    package func isSubscribed(socket id: String, channel: String) -> Bool {
        channels[channel]?.members.contains(id) == true
    }

    /// The sockets on `channel`, by id.
    package func members(of channel: String) -> Set<String> {
        channels[channel]?.members ?? []
    }

    /// Every (channel, socket) subscription held now.
    package var subscriptions: [(channel: String, socket: String)] {
        channels.flatMap { channel, state in state.members.map { (channel: channel, socket: $0) } }
    }

    /// The entries of a refresh batch still held as it goes out: what left since the batch was planned is dropped.
    package func stillSubscribed<Entry>(_ batch: some Sequence<Entry>, channel: (Entry) -> String, socket: (Entry) -> String) -> [Entry] {
        batch.filter { isSubscribed(socket: socket($0), channel: channel($0)) }
    }

    // MARK: - Delivery

    /// Where an event published on `channel` goes: the sockets on it here, but `excluding` (its sender). Without a
    /// sender to leave out, the answer is kept for the next event on the channel (``targets``).
    package mutating func deliver(on channel: String, excluding: String? = nil) -> [HubAction<Socket>] {
        if excluding == nil, let cached = targets[channel] {
            return cached.isEmpty ? [] : [.deliver(channel: channel, to: cached)]
        }
        guard let members = channels[channel]?.members, !members.isEmpty else { return [] }
        let found = members.compactMap { $0 == excluding ? nil : sockets[$0] }
        if excluding == nil { targets[channel] = found }
        return found.isEmpty ? [] : [.deliver(channel: channel, to: found)]
    }

    // MARK: - Draining

    /// Starts the drain: no new socket is taken, and every open one is closed with 4200 (`grace` for its client to
    /// answer). Completes at once when nothing is open or being removed. A second call answers nothing.
    package mutating func drain(grace: Duration?) -> [HubAction<Socket>] {
        guard lifecycle == .running else { return [] }
        lifecycle = .draining
        let closes = sockets.keys.sorted().map { HubAction<Socket>.close(sockets[$0]!, code: 4200, reason: "Server shutting down", grace: grace) }
        return closes + completeDrainIfEmpty()
    }

    private mutating func completeDrainIfEmpty() -> [HubAction<Socket>] {
        guard lifecycle == .draining, sockets.isEmpty, removing.isEmpty else { return [] }
        lifecycle = .drained
        return [.drainCompleted]
    }

    // MARK: - Memory

    /// The peak is the current count again (memory was handed back).
    package mutating func resetPeak() {
        peakSubscriptions = subscriptionCount
    }

    /// Rebuilds the tables to their contents (dictionaries keep their largest capacity).
    package mutating func compact() {
        sockets = Dictionary(uniqueKeysWithValues: sockets.map { ($0.key, $0.value) })
        channels = Dictionary(uniqueKeysWithValues: channels.map { ($0.key, $0.value) })
        removing = Set(removing)
    }

    private mutating func nextTicket() -> UInt64 {
        lastTicket += 1
        return lastTicket
    }
}
