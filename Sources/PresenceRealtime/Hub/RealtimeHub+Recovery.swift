import Logging
import Metrics
import NIOWebSocket
import NIOCore
import PresenceCore

/// Recoverable subscriptions (``RecoveryGates``): the feed confirmed before the position is read, the catch-up, and
/// the hand-over to live events.
extension RealtimeHub {
    /// Returns once `channel`'s feed subscription is no longer in flight (confirmed, or given up because everyone left).
    func feedReady(_ channel: String) async {
        guard case .subscribing? = registry.channels[channel]?.feed else { return }
        await withCheckedContinuation { feedWaiters[channel, default: []].append($0) }
    }

    /// Wakes the subscribes waiting on `topic`'s feed subscription once it is no longer in flight.
    func resumeFeedWaiters(_ topic: RealtimeTopic) {
        guard case .channel(let channel) = topic, let waiters = feedWaiters[channel] else { return }
        if case .subscribing? = registry.channels[channel]?.feed { return }
        feedWaiters[channel] = nil
        for waiter in waiters { waiter.resume() }
    }

    /// Ends `socket`'s hold on `channel` at `position` (the one its subscribe answer named; `nil`: unknown): the live
    /// events kept meanwhile that come after it are written now, after whatever the caller sent before.
    func release(_ socket: PusherSocket, channel: String, at position: ChannelPosition?, checkingGaps: Bool = true) {
        for frame in gates.release(socket: socket.id, channel: channel, at: position, checkingGaps: checkingGaps) { socket.send(frame) }
        fillSocketGaps()
        // The channel's first subscription here: its position is where a feed gap would start, before any event has
        // come (``fillFeedGap()``, and an offset skip in ``deliver(_:channel:)``).
        if let position, lastSeen[channel] == nil, registry.channels[channel] != nil { lastSeen[channel] = position }
    }

    /// After the feed was lost and is back (every topic subscribed again): what was published on the recoverable
    /// channels meanwhile is read from their logs, from the last event the feed brought (``lastSeen``), and sent to
    /// the local sockets there before the live events that came since (``fillGap(_:from:)``).
    func fillFeedGap() async {
        let gaps = lastSeen.map { (channel: $0.key, from: $0.value, sockets: holdForGap($0.key)) }
        for gap in gaps where !gap.sockets.isEmpty { await fillGap(gap.channel, from: gap.from, sockets: gap.sockets) }
    }

    /// An event whose offset skips some (``dispatch(_:payload:)`` saw offset > the last + 1 in the same epoch): the
    /// feed lost events on the way (a reconnect it has not reported yet, a failover). The channel's local sockets are
    /// held now, before that event is written, and the missing ones read from the log.
    func gapDetected(_ channel: String, from position: ChannelPosition) {
        let sockets = holdForGap(channel)
        guard !sockets.isEmpty else { return }
        Task { await self.fillGap(channel, from: position, sockets: sockets) }
    }

    /// Fills the gaps single sockets' gates showed (``RecoveryGates/takeGaps()``): each from its own position.
    func fillSocketGaps() {
        guard gates.hasGaps else { return }
        for gap in gates.takeGaps() {
            guard let socket = registry.sockets[gap.socket] else { continue }
            Task { await self.fillGap(gap.channel, from: gap.from, sockets: [(socket, gap.from)]) }
        }
    }

    /// Holds the live events of `channel`'s local Pusher sockets not held already; returns them, each with the floor
    /// it had (``RecoveryGates/holdForGap(socket:channel:)``).
    private func holdForGap(_ channel: String) -> [(socket: PusherSocket, floor: ChannelPosition?)] {
        guard recovery != nil else { return [] }
        var held: [(socket: PusherSocket, floor: ChannelPosition?)] = []
        for socket in registry.members(of: channel).compactMap({ registry.sockets[$0] }) where socket.face == .pusher {
            let gate = gates.holdForGap(socket: socket.id, channel: channel)
            if gate.held { held.append((socket, gate.floor)) }
        }
        return held
    }

    private func fillGap(_ channel: String, from position: ChannelPosition, sockets: [(socket: PusherSocket, floor: ChannelPosition?)]) async {
        guard let recovery else { return }
        Counter(label: "recovery_feed_gaps_total").increment()
        let answer: ChannelRecovery
        do {
            answer = try await recovery.recover(channel: channel, from: position)
        } catch {
            logger.warning("Could not read what the feed missed; live events go on", metadata: ["channel": "\(channel)", "error": "\(error)"])
            // Redis did not answer: live events go on (not checked for gaps again, which would ask Redis in a loop).
            for (socket, floor) in sockets { release(socket, channel: channel, at: floor, checkingGaps: false) }
            return
        }
        for (socket, floor) in sockets {
            if answer.recovered {
                for frame in catchUp(answer.events, channel: channel, for: socket, after: floor) { socket.send(frame) }
                release(socket, channel: channel, at: answer.position)
            } else {
                release(socket, channel: channel, at: nil)
                socket.close(.unknown(4200), "Reconnect: events were missed")
            }
        }
    }

    /// The frames of a catch-up (``ChannelRecovery/events``, pub/sub texts) as `socket` gets them on `channel`: as
    /// live, a presence channel's member events of the socket's own user left out, and (`after`: a socket's floor, for
    /// a gap fill) the events of that epoch at or before it, which the socket has or never asked for.
    nonisolated func catchUp(_ events: [String], channel: String, for socket: PusherSocket, after floor: ChannelPosition? = nil) -> [String] {
        let own = socket.user(on: channel)
        return events.compactMap { text in
            guard let message = JSONValue.parse(Array(text.utf8))?.object, let event = message["event"]?.string else { return nil }
            if let floor, message["epoch"]?.string == floor.epoch, let offset = message["offset"]?.int, offset <= floor.offset { return nil }
            if let own, event.hasPrefix("pusher_internal:member_"), message["data"]?["user_id"]?.string == own { return nil }
            // The socket's own client events (a gap fill reads them from the log too): never sent back, as live.
            if message["socket_id"]?.string == socket.id { return nil }
            return Self.pusherText(message, event: event, channel: channel)
        }
    }
}
