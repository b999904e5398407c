import Logging
import NIOWebSocket
import PresenceCore
import Synchronization

/// ryOS's `/ws` sockets (``SocketFace/ryos``, frames in ``RyOSRealtimeProtocol``): the same hub, fan-out, channel
/// access, limits and liveness as Pusher sockets, with ryOS's frames and its channel rules.
extension PusherEndpoint {
    /// A ryOS socket is up: it joins the hub (or is closed with 4200 while the worker stops) and takes its ticket, if
    /// any, for its user. A bad, expired or used ticket leaves it anonymous (public channels only), as ryOS does.
    /// Nothing is sent: ryOS has no welcome frame.
    func openRyOS(_ socket: PusherSocket, ticket: String?) async {
        guard await hub.add(socket) else {
            socket.close(.unknown(4200), "Server shutting down")
            return
        }
        guard let ticket, !ticket.isEmpty else { return }
        do {
            if let user = try await tickets.redeem(ticket) {
                socket.state.withLock { $0.ryosUser = user }
            }
        } catch {
            logger.warning("Realtime ticket could not be redeemed; the socket stays anonymous", metadata: ["error": "\(error)"])
        }
    }

    /// One text message from a ryOS client: `ping`, `subscribe`, `unsubscribe`; anything else is ignored.
    func handleRyOS(_ text: String, socket: PusherSocket) async {
        switch RyOSRealtimeProtocol.request(text) {
        case .ping?:
            socket.send(RyOSRealtimeProtocol.pong)
        case .subscribe(let channel)?:
            await subscribeRyOS(channel, socket: socket)
        case .unsubscribe(let channel)?:
            let (subscribed, user) = socket.takeChannel(channel)
            if subscribed { await hub.leave(socket, channel: channel, user: user) }
        case nil:
            break
        }
    }

    /// Subscribes by ryOS's rules (``RyOSRealtimeProtocol/access(to:user:)``); a refusal of any kind (access, an invalid
    /// name, the per-socket channel cap, a failure) is `subscription_error`. A subscription to a channel this service
    /// governs rides on the ticket user's access, like a signed Pusher one: it ends (`subscription_error`) when that
    /// access does.
    private func subscribeRyOS(_ channel: String, socket: PusherSocket) async {
        let refuse = { socket.send(RyOSRealtimeProtocol.subscriptionError(channel: channel)) }
        let (already, count) = socket.state.withLock { ($0.channels[channel] != nil, $0.channels.count) }
        if already { return }
        guard count < settings.maxChannelsPerSocket else { return refuse() }
        var holder: String?
        var accessEpoch: UInt64?
        switch RyOSRealtimeProtocol.access(to: channel, user: socket.ryosUser) {
        case .allowed:
            break
        case .denied:
            return refuse()
        case .governed(let user):
            // Read before the check: after the registration the hub tells whether an access change (a revocation, a
            // logout) came in meanwhile (``confirmAccess(_:holder:since:socket:)``).
            accessEpoch = await hub.accessEpoch
            do {
                guard try await access.allows(channel, user: user) else { return refuse() }
            } catch {
                logger.warning("Channel access check failed", metadata: ["channel": "\(channel)", "error": "\(error)"])
                return refuse()
            }
            holder = user
        }
        let fresh = socket.state.withLock { state -> Bool in
            guard state.channels[channel] == nil else { return false }
            state.channels[channel] = .some(nil)
            if let holder { state.holders[channel] = holder }
            return true
        }
        guard fresh else { return }
        do {
            try await hub.join(socket, channel: channel)
            if let accessEpoch, let holder { _ = await confirmAccess(channel, holder: holder, since: accessEpoch, socket: socket) }
        } catch is RealtimeHub.SubscriptionEnded {
            // Revoked or closed meanwhile: the client was told, if it is still there.
        } catch {
            _ = socket.takeChannel(channel)
            await hub.leave(socket, channel: channel, user: nil)
            refuse()
        }
    }
}
