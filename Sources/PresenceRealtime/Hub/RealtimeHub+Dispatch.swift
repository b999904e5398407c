import Logging
import Metrics
import NIOCore
import NIOWebSocket
import PresenceCore
import Synchronization

/// The hub's incoming side: what the feed carries (client-channel events to the sockets on that channel, the control
/// channel, token revocations, the signed-in users' watchlist events).
extension RealtimeHub {
    /// One message from the feed.
    func dispatch(_ topic: RealtimeTopic, payload: ByteBuffer) {
        let channel: String
        switch topic {
        case .tokensRevoked:
            tokenCache.remove(String(buffer: payload))
            return
        case .control:
            guard let message = JSONValue.parse(payload.readableBytesView)?.object else { return }
            control(message)
            return
        case .channel(let name):
            channel = name
        }
        guard let message = JSONValue.parse(payload.readableBytesView)?.object else { return }
        if channel == PusherProtocol.signedInChannel {
            watchlistEvents(message)
            return
        }
        // Several events on one channel come as one message (`{"events": [...]}`), in order.
        if case .array(let batch)? = message["events"] {
            for case .object(let item) in batch { deliver(item, channel: channel) }
        } else {
            deliver(message, channel: channel)
        }
    }

    /// A message on ``RedisKeys/pusherControl``: `terminate` (close a user's connections), `signout` (a user signed
    /// out: ``signOut(_:)``) or `recheck` (an ``AccessChange``, recorded as it arrives, then re-checked).
    func control(_ message: [String: JSONValue]) {
        if let user = message["terminate"]?.string {
            for socket in registry.sockets.values where socket.users.contains(user) {
                socket.close(.unknown(4009), "Connection terminated by the server")
            }
        } else if let user = message["signout"]?.string {
            signOut(user)
        } else if let change = AccessChange(control: message) {
            accessChanges.record(change)
            Task { await self.recheck(change) }
        }
    }

    /// A signed-in user came online (their first connection anywhere) or went offline (their last one closed, or the
    /// sweeper found them expired): this worker's signed-in connections that watch them are told, on their
    /// `#server-to-user-` channel.
    private func watchlistEvents(_ message: [String: JSONValue]) {
        let items: [[String: JSONValue]]
        if case .array(let batch)? = message["events"] { items = batch.compactMap(\.object) } else { items = [message] }
        for item in items {
            let name: String
            switch item["event"]?.string {
            case "pusher_internal:member_added": name = "online"
            case "pusher_internal:member_removed": name = "offline"
            default: continue
            }
            guard let user = item["data"]?["user_id"]?.string, case let ids = registry.members(of: PusherProtocol.signedInChannel), !ids.isEmpty else { continue }
            for id in ids {
                guard let socket = registry.sockets[id], socket.face == .pusher, socket.watches(user), let watcher = socket.signedIn else { continue }
                socket.send(PusherProtocol.watchlistEvents(name, users: [user], to: watcher))
            }
        }
    }

    /// One event from a `ch:` message to this worker's sockets on `channel` (but its sender's, and on presence
    /// channels, the member event's own user's). Each face's frame is serialized once, header and payload, and the
    /// same bytes go to every socket of that face: one entry per event loop on its ``DeliveryLane`` (not a hop per
    /// socket), flushed once per socket when the lane has written it. ryOS sockets get no `pusher:` or
    /// `pusher_internal:` event.
    private func deliver(_ message: [String: JSONValue], channel: String) {
        guard let event = message["event"]?.string else { return }
        if recovery != nil, let offset = message["offset"]?.int, let epoch = message["epoch"]?.string {
            let previous = lastSeen[channel]
            lastSeen[channel] = ChannelPosition(epoch: epoch, offset: offset)
            // Offsets skipped: the feed lost events on the way; they come from the log, this one after them.
            if let previous, previous.skips(to: offset, epoch: epoch) { gapDetected(channel, from: previous) }
        }
        let exclude = message["socket_id"]?.string
        // The sender's own client event is not sent back to it, yet it takes an offset: the sender's gate counts it.
        if let exclude, gates.isGated(channel), let offset = message["offset"]?.int, let epoch = message["epoch"]?.string {
            gates.ownEvent(socket: exclude, channel: channel, offset: offset, epoch: epoch)
        }
        guard case .deliver(_, let targets)? = registry.deliver(on: channel, excluding: exclude).first else { return }
        var pusher = DeliveryLane.Fanout()
        var ryos = DeliveryLane.Fanout()
        let memberEventUser = event.hasPrefix("pusher_internal:member_") ? message["data"]?["user_id"]?.string : nil
        let ryosDeliverable = RyOSRealtimeProtocol.isDeliverable(event)
        // A recoverable subscription being caught up holds its live events (``RecoveryGates``).
        let gated = gates.isGated(channel)
        var pusherFrame: OutboundFrame?
        for socket in targets {
            switch socket.face {
            case .pusher:
                if let memberEventUser, socket.user(on: channel) == memberEventUser { continue }
                if gated {
                    let frame = pusherFrame ?? OutboundFrame(text: Self.pusherText(message, event: event, channel: channel))
                    pusherFrame = frame
                    if !gates.admit(frame, offset: message["offset"]?.int, epoch: message["epoch"]?.string, socket: socket.id, channel: channel) {
                        continue
                    }
                }
                pusher.add(socket.outbound, capacity: targets.count)
            case .ryos:
                guard ryosDeliverable else { continue }
                ryos.add(socket.outbound, capacity: targets.count)
            case .echo:
                continue  // never in the hub
            }
        }
        if !pusher.isEmpty { pusher.submit(pusherFrame ?? OutboundFrame(text: Self.pusherText(message, event: event, channel: channel))) }
        if !ryos.isEmpty { ryos.submit(OutboundFrame(text: RyOSRealtimeProtocol.event(event, channel: channel, data: message["data"]))) }
        // A socket whose first event past its floor skipped some: filled from its own position (the event is held).
        if gated { fillSocketGaps() }
    }

    /// An event as Pusher clients receive it: `data` a string, `user_id` when the message names one, and on a
    /// recoverable channel its `offset` and `epoch`.
    static func pusherText(_ message: [String: JSONValue], event: String, channel: String) -> String {
        let data: String
        switch message["data"] {
        case .string(let text)?: data = text
        case let value?: data = value.serialized
        case nil: data = "{}"
        }
        var out: [String: JSONValue] = ["event": .string(event), "channel": .string(channel), "data": .string(data)]
        if let user = message["user_id"]?.string { out["user_id"] = .string(user) }
        if let offset = message["offset"]?.int, let epoch = message["epoch"]?.string {
            out["offset"] = .int(offset)
            out["epoch"] = .string(epoch)
        }
        return JSONValue.object(out).serialized
    }
}
