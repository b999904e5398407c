import Foundation
import Logging
import Metrics
import NIOCore
import NIOWebSocket
import PresenceCore
import ServiceLifecycle
import Synchronization

/// This worker's side of the fan-out: its WebSockets, which channels they use, and one Redis subscriber that
/// listens to exactly those channels (`ch:<channel>`, reference-counted: subscribed with the first local socket,
/// unsubscribed with the last; no PSUBSCRIBE). On a Redis Cluster the subscriber is sharded: a connection per
/// primary, each channel on the primary of its slot. Whatever any worker publishes reaches the local sockets here.
///
/// The rules live in ``HubRegistry``, a plain value that answers ``HubAction``s; this actor is its driver: it tells the
/// registry what happened (a socket added or removed, a join, a leave, a feed confirmation, a drain) and performs what
/// it answers (the feed, Redis through the storage protocols, the sockets). Its periodic work (pings after
/// `activity_timeout`, 4201 when no reply comes within `pong_timeout`, the presence and occupancy its sockets hold
/// refreshed in Redis, memory handed back) is ``HubMaintenance``'s. On a stop it closes every socket with 4200
/// (``drain(grace:)``).
package actor RealtimeHub: Service {
    /// Where this worker's subscriptions are counted for the whole cluster.
    let occupancy: any OccupancyStorage
    let subscriber: any RealtimeFeed
    let presence: ChannelPresence
    /// Who may hold which channel: re-checked when access changes, after a reconnect and when presence lapsed.
    let access: ChannelAccess
    let settings: PusherSettings
    /// Told about revoked tokens (`tokens:revoked`), and emptied when the subscriber reconnects.
    let tokenCache: ExpiringCache<String>
    let logger: Logger
    /// Where webhook events go (`nil`: webhooks are off).
    let webhooks: (any WebhookOutboxStorage)?
    /// Recoverable channels' logs, read to fill what the feed missed while it was reconnecting (`nil`: recovery off).
    let recovery: (any ChannelRecoveryStorage)?
    /// How long a socket's subscription counts in Redis without a refresh (`OCCUPANCY_TTL`).
    let occupancyTTL: Duration
    /// The most Redis calls the periodic refreshes send in one batch: a worker with many sockets refreshes in many
    /// small round trips, so no batch holds up the requests that share its connection.
    static let refreshBatchSize = 256
    /// This hub's batch size for its refreshes (``refreshBatchSize``; tests use small ones to get several batches).
    let refreshBatch: Int

    /// The sockets, their channels, the feed's subscriptions and the drain.
    var registry = HubRegistry<PusherSocket>()
    /// The access changes (and sign-outs) this worker has heard of, numbered: a subscribe whose access check ran
    /// while one came in checks again (``accessChanged(since:channel:holder:)``).
    var accessChanges = AccessChangeLog()
    /// Recoverable subscriptions being caught up: their live events held, then a floor (``RecoveryGates``).
    var gates = RecoveryGates<OutboundFrame>()
    /// The position of the last event the feed brought on each recoverable channel this worker holds: where a
    /// reconnected feed's gap starts (``fillFeedGap()``).
    var lastSeen: [String: ChannelPosition] = [:]
    /// `message_unseen`'s notices (`nil`: off): told which sockets watch which private room or ticket.
    let unseen: UnseenMessages?
    /// This worker's subscriptions to private rooms' and tickets' channels, with their users, by socket and channel:
    /// recorded in Redis (``UnseenMessages/watch(_:ttl:)``) while they last.
    var watching: [String: [String: RoomWatch]] = [:]
    /// Subscribes waiting for a channel's feed subscription to be confirmed (``feedReady(_:)``).
    var feedWaiters: [String: [CheckedContinuation<Void, Never>]] = [:]
    /// Opened when the last socket is gone while draining.
    private let emptied = Latch()
    private let socketsGauge = Gauge(label: "websocket_connections")
    private let subscriptionsGauge = Gauge(label: "pubsub_subscriptions")

    package init(
        subscriber: any RealtimeFeed, occupancy: any OccupancyStorage, presence: ChannelPresence, access: ChannelAccess,
        settings: PusherSettings, tokenCache: ExpiringCache<String>, webhooks: (any WebhookOutboxStorage)? = nil,
        recovery: (any ChannelRecoveryStorage)? = nil, unseen: UnseenMessages? = nil, logger: Logger,
        refreshBatch: Int = RealtimeHub.refreshBatchSize
    ) {
        self.unseen = unseen
        self.recovery = recovery
        self.refreshBatch = max(2, refreshBatch)
        self.webhooks = webhooks
        self.occupancyTTL = .seconds(settings.occupancyTTL)
        self.subscriber = subscriber
        self.occupancy = occupancy
        self.presence = presence
        self.access = access
        self.settings = settings
        self.tokenCache = tokenCache
        self.logger = logger
    }

    /// The hub's periodic work, driven by its registry.
    nonisolated var maintenance: HubMaintenance {
        let presence = self.presence
        return HubMaintenance(
            host: self, occupancy: occupancy, occupancyTTL: occupancyTTL, presenceTTL: presence.ttl,
            pongTimeout: settings.pongTimeout, batchSize: refreshBatch, settlesLapsed: webhooks != nil, logger: logger,
            refreshPresence: { try await presence.refresh($0) },
            unseen: unseen
        )
    }

    /// Number of open sockets on this worker.
    package var socketCount: Int { registry.sockets.count }

    /// The open socket with this id (for tests).
    func socket(_ id: String) -> PusherSocket? { registry.sockets[id] }

    /// The open sockets (for tests).
    var openSockets: [PusherSocket] { Array(registry.sockets.values) }

    /// Open sockets, and the client channels this worker is subscribed to in Redis for them.
    package var counts: (sockets: Int, channels: Int) { (registry.sockets.count, registry.activeChannelCount) }
    /// Sockets gone whose channels are still being left (feed, occupancy, presence).
    package var removalsInFlight: Int { registry.removing.count }

    /// Takes a new socket; `false` while the worker is stopping (the caller closes it with 4200).
    func add(_ socket: PusherSocket) async -> Bool {
        guard case .admitted(let actions) = registry.add(socket, id: socket.id) else { return false }
        socketsGauge.record(registry.sockets.count)
        await perform(actions)
        return true
    }

    /// Forgets a socket and leaves every channel it was on (presence removed and announced).
    func remove(_ socket: PusherSocket) async {
        guard registry.sockets[socket.id] != nil else { return }
        let channels = socket.takeChannels()
        gates.remove(socket: socket.id, channels: channels.keys)
        let actions = registry.remove(socket.id, channels: channels)
        socketsGauge.record(registry.sockets.count)
        subscriptionsGauge.record(registry.activeChannelCount)
        let watches = watching.removeValue(forKey: socket.id).map { Array(Set($0.values)) } ?? []
        await perform(actions)
        await unseen?.unwatch(watches)
        await perform(registry.removalFinished(socket.id))
    }

    /// Thrown by ``join(_:channel:)`` when the socket closed, or no longer holds the channel (revoked), by the time
    /// the hub gets to it: nothing is recorded, and whatever ended it has told the client already.
    struct SubscriptionEnded: Error {}

    /// Adds `socket` to `channel` locally (subscribing in Redis if it is the first) and records it in Redis. The
    /// socket must hold the channel already (``PusherSocket/State/channels``), else ``SubscriptionEnded``.
    ///
    /// `hold`: a recoverable subscription; its live events on `channel` are held from now until
    /// ``release(_:channel:at:)`` (``RecoveryGates``), and the join returns once the channel's feed subscription is
    /// confirmed, so that everything published after the caller's next read of the channel's position arrives live.
    func join(_ socket: PusherSocket, channel: String, hold: Bool = false) async throws {
        // A revocation or the socket's close may have run between the caller's registration and here: joining then
        // would leave the socket in the channel with nothing to take it out.
        let held = socket.state.withLock { $0.channels[channel] != nil }
        guard case .joined(let actions) = registry.join(socket: socket.id, channel: channel, held: held) else { throw SubscriptionEnded() }
        if hold { gates.hold(socket: socket.id, channel: channel) }
        subscriptionsGauge.record(registry.activeChannelCount)
        // The feed's subscribe is queued before the first await, on the actor: subscribes and unsubscribes of a
        // channel reach Redis in the order the registry decided them. A first subscriber's channel_occupied webhook is
        // written by the occupancy script.
        await perform(actions)
        // Left while the touch was on its way: the leave's removal may have reached Redis first.
        await perform(registry.joinSettled(socket: socket.id, channel: channel))
        await watch(socket, channel: channel)
        if hold { await feedReady(channel) }
    }

    /// A subscription to a private room's or ticket's channel, riding on a user's access: that user sees the room's
    /// messages while it lasts (`message_unseen`). Recorded in Redis; taken back if the socket left meanwhile.
    func watch(_ socket: PusherSocket, channel: String) async {
        guard let unseen, let room = RoomWatch.room(ofChannel: channel), let user = socket.holder(on: channel) else { return }
        let entry = RoomWatch(room: room, user: user, socket: socket.id)
        watching[socket.id, default: [:]][channel] = entry
        await unseen.watch([entry], ttl: occupancyTTL)
        // Left meanwhile (its removal may have reached Redis first): taken back, unless another channel of the room
        // on this socket still holds it.
        if !watches(entry) { await unseen.unwatch([entry]) }
    }

    /// Takes `socket` off `channel` (it has forgotten the channel already): the feed unsubscribed if it was the last
    /// here, its occupancy removed, its presence as `user` removed and announced.
    func leave(_ socket: PusherSocket, channel: String, user: String?) async {
        gates.remove(socket: socket.id, channel: channel)
        let actions = registry.leave(socket: socket.id, channel: channel, user: user)
        subscriptionsGauge.record(registry.activeChannelCount)
        let watch = watching[socket.id]?.removeValue(forKey: channel)
        if watching[socket.id]?.isEmpty == true { watching[socket.id] = nil }
        await perform(actions)
        // A socket on both of a room's channels (`private-room-`, `presence-room-`) keeps its watch until it leaves both.
        if let watch, !watches(watch) { await unseen?.unwatch([watch]) }
    }

    /// Carries out the registry's actions, in order. Every feed request among them is queued first, before the first
    /// await: a call the actor runs during one of these awaits (a join, a leave) queues its own requests after them, so
    /// the feed gets every topic's subscribes and unsubscribes in the order the registry decided them. (Queued one by
    /// one between awaits, a removal's unsubscribe of a second channel could reach the feed after a join's subscribe
    /// of that channel made meanwhile, leaving the registry subscribed and the feed not.) Feed actions of one kind with
    /// none of the other between them go as one request: a socket's removal from 100 channels is one UNSUBSCRIBE of
    /// 100, not 100 requests in flight at once.
    func perform(_ actions: [HubAction<PusherSocket>]) async {
        var requests: [Int: EventLoopFuture<Void>] = [:]
        var run: (subscribe: Bool, topics: [RealtimeTopic], members: [Int])?
        func send(_ run: (subscribe: Bool, topics: [RealtimeTopic], members: [Int])) {
            let future = run.subscribe ? subscriber.requestSubscribe(run.topics) : subscriber.requestUnsubscribe(run.topics)
            for member in run.members { requests[member] = future }
        }
        for (index, action) in actions.enumerated() {
            let feed: (subscribe: Bool, topic: RealtimeTopic)
            switch action {
            case .subscribeFeed(let topic, _): feed = (true, topic)
            case .unsubscribeFeed(let topic, _): feed = (false, topic)
            default: continue
            }
            if let current = run, current.subscribe == feed.subscribe {
                run?.topics.append(feed.topic)
                run?.members.append(index)
            } else {
                if let current = run { send(current) }
                run = (feed.subscribe, [feed.topic], [index])
            }
        }
        if let current = run { send(current) }
        for (index, action) in actions.enumerated() {
            switch action {
            case .subscribeFeed(let topic, let ticket):
                do {
                    try await requests[index]?.get()
                } catch {
                    logger.warning("Subscribe failed; it will be retried on reconnect", metadata: ["topic": "\(topic)", "error": "\(error)"])
                }
                registry.feedSubscribed(topic, ticket: ticket)
                resumeFeedWaiters(topic)
            case .unsubscribeFeed(let topic, let ticket):
                try? await requests[index]?.get()
                registry.feedUnsubscribed(topic, ticket: ticket)
                resumeFeedWaiters(topic)
                if case .channel(let channel) = topic, registry.channels[channel] == nil { lastSeen[channel] = nil }
            case .touchOccupancy(let channel, let socket):
                _ = try? await occupancy.touch([(channel, socket)], ttl: occupancyTTL)
            case .removeOccupancy(let channel, let socket):
                _ = try? await occupancy.remove(channel: channel, socket: socket)
            case .removePresence(let channel, let user, let socket):
                do {
                    try await presence.detach(channel: channel, user: user, socket: socket)
                } catch {
                    logger.warning("Presence detach failed; the entry will lapse", metadata: ["channel": "\(channel)", "error": "\(error)"])
                }
            case .deliver:
                break  // events are written as they are dispatched (``dispatch(_:payload:)``)
            case .close(let socket, let code, let reason, let grace):
                socket.close(.unknown(code), reason, grace: grace)
            case .drainCompleted:
                emptied.open()
            }
        }
    }

    // MARK: - Webhooks

    /// Writes webhook events to the outbox when webhooks are on. A failure is logged and counted
    /// (`webhook_events_unrecorded_total`): the change already happened.
    nonisolated func record(_ events: [WebhookEvent]) async {
        guard let webhooks, !events.isEmpty else { return }
        do {
            try await webhooks.append(events)
        } catch {
            Counter(label: "webhook_events_unrecorded_total").increment(by: Int64(events.count))
            logger.error("Webhook events could not be written to the outbox", metadata: [
                "events": "\(events.map { "\($0.name.rawValue) \($0.channel)" })", "error": "\(error)",
            ])
        }
    }

    // MARK: - Stopping

    /// Closes every socket with 4200 and refuses new ones. Sockets that have not closed within `grace` are dropped
    /// (a client that stopped reading never takes the close frame); each socket's channels are left as it goes, so
    /// its presence is removed and announced. Returns when every socket is gone, or a second after `grace`.
    package func drain(grace: Duration) async {
        guard registry.lifecycle == .running else { return }
        let count = registry.sockets.count
        await perform(registry.drain(grace: grace))
        // Nothing open or being removed: drained already.
        guard registry.lifecycle != .drained else { return }
        let started = ContinuousClock.now
        if !(await emptied.wait(timeout: grace + .seconds(1))) {
            logger.warning("Sockets still leaving after the close grace; dropping them", metadata: [
                "left": "\(registry.sockets.count)", "removals_in_flight": "\(registry.removing.count)",
            ])
            for socket in registry.sockets.values { socket.drop() }
            await emptied.wait(timeout: .seconds(1))
        }
        logger.info("WebSockets closed with 4200", metadata: [
            "sockets": "\(count)", "elapsed_ms": "\((ContinuousClock.now - started).milliseconds)",
        ])
    }

    // MARK: - Running

    package nonisolated func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            // First the subscriber's own routing (sharded pub/sub), which a subscribe may wait for.
            group.addTask { await self.subscriber.run() }
            // Wanted for the worker's whole life; subscribed as soon as Redis answers.
            _ = subscriber.requestSubscribe([.tokensRevoked])
            group.addTask { await self.consume() }
            let maintenance = self.maintenance
            group.addTask { await maintenance.run() }
            try? await gracefulShutdown()
            // Normally done already by the stop sequence, before the HTTP server stopped.
            await self.drain(grace: .seconds(1))
            await self.subscriber.close()
            group.cancelAll()
        }
    }

    private func consume() async {
        for await event in subscriber.events {
            switch event {
            case .message(let topic, let payload):
                dispatch(topic, payload: payload)
            case .reconnected:
                tokenCache.removeAll()
                accessChanges.recordEverything()
                // Access changes published while the subscriber was away were missed: check every subscription.
                Task { await self.recheck(AccessChange(user: nil, prefix: "")) }
                await resendPresence()
                await fillFeedGap()
            }
        }
    }

    /// Refreshes this worker's presence in Redis (``HubMaintenance/refreshPresence()``).
    func refreshPresence() async {
        await maintenance.refreshPresence()
    }

    /// Refreshes this worker's channel occupancy in Redis (``HubMaintenance/refreshOccupancy()``).
    func refreshOccupancy() async {
        await maintenance.refreshOccupancy()
    }
}
