import Logging
import Metrics
import NIOCore
import NIOWebSocket
import PresenceCore
import Synchronization

/// The hub as ``HubMaintenance`` sees it: its registry's state as each refresh batch goes out, and the per-socket work
/// (pings, restoring a lapsed presence, re-sending presence after a reconnect, handing memory back).
extension RealtimeHub: HubMaintenanceHost {
    /// Every (presence channel, user, socket) this worker holds.
    package func presenceEntries() -> [HubPresenceEntry] {
        registry.sockets.values.flatMap { socket in
            socket.state.withLock { state in
                state.channels.compactMap { channel, user in user.map { (channel: channel, user: $0, socket: socket.id) } }
            }
        }
    }

    /// Whether `entry`'s socket is open here, on its presence channel in the registry, and there as its user.
    func holds(_ entry: HubPresenceEntry) -> Bool {
        registry.isSubscribed(socket: entry.socket, channel: entry.channel) && registry.sockets[entry.socket]?.user(on: entry.channel) == entry.user
    }

    /// Those of `batch` whose socket is still open and on the channel as that user (``holds(_:)``).
    package func stillHeld(_ batch: [HubPresenceEntry]) -> [HubPresenceEntry] {
        batch.filter { holds($0) }
    }

    /// Every subscription to a private room's or ticket's channel this worker records for `message_unseen`.
    package func roomWatches() -> [RoomWatch] {
        Array(Set(watching.values.flatMap(\.values)))
    }

    /// Those of `batch` a socket here still holds (on either of the room's channels).
    package func stillWatching(_ batch: [RoomWatch]) -> [RoomWatch] {
        batch.filter { watches($0) }
    }

    /// Whether `watch`'s socket still holds a channel of its room as its user.
    func watches(_ watch: RoomWatch) -> Bool {
        watching[watch.socket]?.values.contains(watch) == true
    }

    /// Every (channel, socket) subscription in the registry now.
    package func subscriptionEntries() -> [HubSubscriptionEntry] {
        registry.subscriptions
    }

    /// Those of `batch` still in the registry now.
    package func stillSubscribed(_ batch: [HubSubscriptionEntry]) -> [HubSubscriptionEntry] {
        registry.stillSubscribed(batch, channel: \.channel, socket: \.socket)
    }

    /// Subscriptions held now, the most held since memory was last handed back, and open sockets.
    package func load() -> (subscriptions: Int, peak: Int, sockets: Int) {
        (registry.subscriptionCount, registry.peakSubscriptions, registry.sockets.count)
    }

    /// Shrinks the registry's tables and the feed's to their contents; the peak becomes the current count.
    package func compact() {
        registry.resetPeak()
        registry.compact()
        subscriber.compact()
    }

    /// A socket's presence lapsed (swept after a stall, or removed by an access change this worker has not seen yet):
    /// it comes back only if the user may still be there; otherwise the subscription ends.
    package func restorePresence(_ entry: HubPresenceEntry) async {
        guard let socket = registry.sockets[entry.socket], holds(entry) else { return }
        if ChannelAccess.isGoverned(entry.channel) {
            guard let allowed = try? await access.allows(entry.channel, user: entry.user) else { return }
            if !allowed {
                await revoke(socket, channel: entry.channel)
                return
            }
        }
        // The socket may have left during the check, or leave while the attach is on its way (its detach reaching
        // Redis first): what it no longer holds is taken back, so its user's last leave is announced.
        guard holds(entry) else { return }
        if entry.channel == PusherProtocol.signedInChannel {
            _ = try? await presence.join(channel: entry.channel, user: entry.user, socket: entry.socket)
        } else {
            _ = try? await presence.attach(channel: entry.channel, user: entry.user, socket: entry.socket)
        }
        if !holds(entry) { try? await presence.detach(channel: entry.channel, user: entry.user, socket: entry.socket) }
    }

    /// Pings silent sockets (`pusher:ping`; a ryOS socket a WebSocket ping frame, which browsers answer themselves)
    /// and closes dead ones (4201).
    package func checkActivity() {
        let now = ContinuousClock.now
        let activityTimeout = Duration.seconds(settings.activityTimeout), pongTimeout = Duration.seconds(settings.pongTimeout)
        for socket in registry.sockets.values {
            switch socket.activity.verdict(now: now, activityTimeout: activityTimeout, pongTimeout: pongTimeout) {
            case .alive:
                break
            case .ping:
                switch socket.face {
                case .pusher: socket.send(PusherProtocol.message("pusher:ping", data: "{}"))
                case .ryos: socket.ping()
                case .echo: break  // never in the hub
                }
            case .dead:
                Counter(label: "websocket_closed_total", dimensions: [("reason", "pong_timeout")]).increment()
                socket.close(.unknown(4201), "Pong reply not received")
            }
        }
    }

    /// After Redis came back: pub/sub may have dropped member events, so send presence again.
    func resendPresence() async {
        logger.info("Redis pub/sub reconnected; re-sending presence to presence-channel sockets")
        // Redis may have restarted empty: put this worker's presence back first.
        await refreshPresence()
        let channels = registry.channels.filter { $0.key.hasPrefix("presence-") && !$0.value.members.isEmpty }.map(\.key)
        for channel in channels {
            // At most PUSHER_MAX_PRESENCE_MEMBERS members and the true count, as on subscribing; on a larger
            // room-backed channel each socket's own user is listed too (one read for those left out).
            guard let snapshot = try? await presence.snapshot(channel: channel, limit: settings.maxPresenceMembers) else { continue }
            let text = PusherProtocol.subscriptionSucceeded(channel: channel, presence: snapshot)
            // ryOS sockets have no presence frames (on `presence-global` they only listen to events).
            let targets = registry.members(of: channel).compactMap { registry.sockets[$0] }.filter { $0.face == .pusher }
            var own: [String: ChannelPresence.Member] = [:]
            if snapshot.isPartial {
                let listed = Set(snapshot.members.map(\.id))
                let missing = Set(targets.compactMap { $0.user(on: channel) }).subtracting(listed)
                for member in (try? await presence.members(channel: channel, users: Array(missing))) ?? [] { own[member.id] = member }
            }
            for socket in targets {
                if let user = socket.user(on: channel), let me = own[user] {
                    socket.send(PusherProtocol.subscriptionSucceeded(channel: channel, presence: snapshot.including(me)))
                } else {
                    socket.send(text)
                }
            }
        }
    }
}
