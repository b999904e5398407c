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
    func release(_ socket: PusherSocket, channel: String, at position: ChannelPosition?) {
        for frame in gates.release(socket: socket.id, channel: channel, at: position) { socket.send(frame) }
    }

    /// The frames of a catch-up (``ChannelRecovery/events``, pub/sub texts) as `socket` gets them on `channel`: as
    /// live, a presence channel's member events of the socket's own user left out.
    nonisolated func catchUp(_ events: [String], channel: String, for socket: PusherSocket) -> [String] {
        let own = socket.user(on: channel)
        return events.compactMap { text in
            guard let message = JSONValue.parse(Array(text.utf8))?.object, let event = message["event"]?.string else { return nil }
            if let own, event.hasPrefix("pusher_internal:member_"), message["data"]?["user_id"]?.string == own { return nil }
            return Self.pusherText(message, event: event, channel: channel)
        }
    }
}
