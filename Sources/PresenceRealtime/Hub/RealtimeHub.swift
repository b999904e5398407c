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
/// It also keeps its sockets honest: a silent client gets `pusher:ping` after `activity_timeout` and is closed
/// (4201) when no reply comes within `pong_timeout`; and it refreshes in Redis, in bounded batches, the presence and
/// occupancy its sockets hold. On a stop it closes every socket with 4200 (``drain(grace:)``).
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
    /// How long a socket's subscription counts in Redis without a refresh (`OCCUPANCY_TTL`).
    let occupancyTTL: Duration
    /// The most Redis calls the periodic refreshes send in one batch: a worker with many sockets refreshes in many
    /// small round trips, so no batch holds up the requests that share its connection.
    static let refreshBatchSize = 256
    /// This hub's batch size for its refreshes (``refreshBatchSize``; tests use small ones to get several batches).
    let refreshBatch: Int

    private var sockets: [String: PusherSocket] = [:]
    private var channelSockets: [String: Set<String>] = [:]
    /// The access changes (and sign-outs) this worker has heard of, numbered: a subscribe whose access check ran
    /// while one came in checks again (``accessChanged(since:channel:holder:)``).
    private var accessChanges = AccessChangeLog()
    /// Sockets removed whose channels are still being left in Redis.
    private var removalsInFlight = 0
    /// Set by ``drain(grace:)``: no new socket is accepted.
    private var draining = false
    /// Opened when the last socket is gone while draining.
    private let emptied = Latch()
    /// (channel, socket) subscriptions held now, and the most held since memory was last handed back.
    private var subscriptionCount = 0
    private var peakSubscriptions = 0
    private var subscriptionsAtLastTick = 0
    private var socketsAtLastTrimCheck = 0
    private var trimAgainAt: ContinuousClock.Instant?
    private let socketsGauge = Gauge(label: "websocket_connections")
    private let subscriptionsGauge = Gauge(label: "pubsub_subscriptions")

    package init(
        subscriber: any RealtimeFeed, occupancy: any OccupancyStorage, presence: ChannelPresence, access: ChannelAccess,
        settings: PusherSettings, tokenCache: ExpiringCache<String>, webhooks: (any WebhookOutboxStorage)? = nil, logger: Logger,
        refreshBatch: Int = RealtimeHub.refreshBatchSize
    ) {
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

    /// Number of open sockets on this worker.
    package var socketCount: Int { sockets.count }

    /// The open socket with this id (for tests).
    func socket(_ id: String) -> PusherSocket? { sockets[id] }

    /// The open sockets (for tests).
    var openSockets: [PusherSocket] { Array(sockets.values) }

    /// Open sockets, and the client channels this worker is subscribed to in Redis for them.
    package var counts: (sockets: Int, channels: Int) { (sockets.count, channelSockets.count) }

    /// Takes a new socket; `false` while the worker is stopping (the caller closes it with 4200).
    func add(_ socket: PusherSocket) async -> Bool {
        guard !draining else { return false }
        sockets[socket.id] = socket
        socketsGauge.record(sockets.count)
        if sockets.count == 1 { try? await subscriber.requestSubscribe(.control).get() }
        return true
    }

    /// Forgets a socket and leaves every channel it was on (presence removed and announced).
    func remove(_ socket: PusherSocket) async {
        guard sockets.removeValue(forKey: socket.id) != nil else { return }
        socketsGauge.record(sockets.count)
        removalsInFlight += 1
        for (channel, user) in socket.takeChannels() {
            await leave(socket, channel: channel, user: user)
        }
        removalsInFlight -= 1
        if draining && sockets.isEmpty && removalsInFlight == 0 { emptied.open() }
    }

    /// Thrown by ``join(_:channel:)`` when the socket closed, or no longer holds the channel (revoked), by the time
    /// the hub gets to it: nothing is recorded, and whatever ended it has told the client already.
    struct SubscriptionEnded: Error {}

    /// Adds `socket` to `channel` locally (subscribing in Redis if it is the first) and records it in Redis. The
    /// socket must hold the channel already (``PusherSocket/State/channels``), else ``SubscriptionEnded``.
    func join(_ socket: PusherSocket, channel: String) async throws {
        // A revocation or the socket's close may have run between the caller's registration and here: joining then
        // would leave the socket in the channel with nothing to take it out.
        guard sockets[socket.id] != nil, socket.state.withLock({ $0.channels[channel] != nil }) else { throw SubscriptionEnded() }
        let (inserted, _) = channelSockets[channel, default: []].insert(socket.id)
        if inserted {
            subscriptionCount += 1
            peakSubscriptions = max(peakSubscriptions, subscriptionCount)
        }
        if inserted && channelSockets[channel]?.count == 1 {
            subscriptionsGauge.record(channelSockets.count)
            do {
                // Queued before the await, on the actor: subscribes and unsubscribes of a channel reach Redis in
                // the order the hub decided them, whatever the awaits do afterwards.
                try await subscriber.requestSubscribe(.channel(channel)).get()
            } catch {
                logger.warning("Subscribe failed; it will be retried on reconnect", metadata: ["channel": "\(channel)", "error": "\(error)"])
            }
        }
        // A first subscriber's channel_occupied webhook is written by the same script.
        _ = try? await occupancy.touch([(channel, socket.id)], ttl: occupancyTTL)
        // Left while the touch was on its way: the leave's removal may have reached Redis first.
        if channelSockets[channel]?.contains(socket.id) != true {
            _ = try? await occupancy.remove(channel: channel, socket: socket.id)
        }
    }

    func leave(_ socket: PusherSocket, channel: String, user: String?) async {
        let removed = channelSockets[channel]?.remove(socket.id) != nil
        if removed { subscriptionCount -= 1 }
        if removed, channelSockets[channel]?.isEmpty == true {
            channelSockets[channel] = nil
            subscriptionsGauge.record(channelSockets.count)
            try? await subscriber.requestUnsubscribe(.channel(channel)).get()
        }
        _ = try? await occupancy.remove(channel: channel, socket: socket.id)
        if let user {
            do {
                try await presence.detach(channel: channel, user: user, socket: socket.id)
            } catch {
                logger.warning("Presence detach failed; the entry will lapse", metadata: ["channel": "\(channel)", "error": "\(error)"])
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

    /// Channels whose subscribers all lapsed (their worker died): vacated, announced once by whichever worker settles
    /// them.
    private func settleLapsedChannels() async {
        do {
            // Each vacated channel's webhook is written by the script that settled it.
            _ = try await occupancy.settleLapsed(limit: Self.refreshBatchSize)
        } catch {
            logger.debug("Settling lapsed channels failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - Stopping

    /// Closes every socket with 4200 and refuses new ones. Sockets that have not closed within `grace` are dropped
    /// (a client that stopped reading never takes the close frame); each socket's channels are left as it goes, so
    /// its presence is removed and announced. Returns when every socket is gone, or a second after `grace`.
    package func drain(grace: Duration) async {
        guard !draining else { return }
        draining = true
        let count = sockets.count
        guard count > 0 else { return }
        let started = ContinuousClock.now
        for socket in sockets.values { socket.close(.unknown(4200), "Server shutting down", grace: grace) }
        if !(await emptied.wait(timeout: grace + .seconds(1))) {
            logger.warning("Sockets still leaving after the close grace; dropping them", metadata: [
                "left": "\(sockets.count)", "removals_in_flight": "\(removalsInFlight)",
            ])
            for socket in sockets.values { socket.drop() }
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
            _ = subscriber.requestSubscribe(.tokensRevoked)
            group.addTask { await self.consume() }
            group.addTask { await self.maintain() }
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
            }
        }
    }

    private func dispatch(_ topic: RealtimeTopic, payload: ByteBuffer) {
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
        guard let ids = channelSockets[channel] else { return }
        // Several events on one channel come as one message (`{"events": [...]}`), in order.
        if case .array(let batch)? = message["events"] {
            for case .object(let item) in batch { deliver(item, channel: channel, to: ids) }
        } else {
            deliver(message, channel: channel, to: ids)
        }
    }

    /// A message on ``RedisKeys/pusherControl``: `terminate` (close a user's connections), `signout` (a user signed
    /// out: ``signOut(_:)``) or `recheck` (an ``AccessChange``, recorded as it arrives, then re-checked).
    func control(_ message: [String: JSONValue]) {
        if let user = message["terminate"]?.string {
            for socket in sockets.values where socket.users.contains(user) {
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
            guard let user = item["data"]?["user_id"]?.string, let ids = channelSockets[PusherProtocol.signedInChannel] else { continue }
            for id in ids {
                guard let socket = sockets[id], socket.face == .pusher, socket.watches(user), let watcher = socket.signedIn else { continue }
                socket.send(PusherProtocol.watchlistEvents(name, users: [user], to: watcher))
            }
        }
    }

    /// One event from a `ch:` message to this worker's sockets on `channel` (but its sender's, and on presence
    /// channels, the member event's own user's). Each face's text is built once, when its first socket needs it; ryOS
    /// sockets get no `pusher:` or `pusher_internal:` event.
    private func deliver(_ message: [String: JSONValue], channel: String, to ids: Set<String>) {
        guard let event = message["event"]?.string else { return }
        var pusherText: String?
        var ryosText: String?
        let exclude = message["socket_id"]?.string
        let memberEventUser = event.hasPrefix("pusher_internal:member_") ? message["data"]?["user_id"]?.string : nil
        let ryosDeliverable = RyOSRealtimeProtocol.isDeliverable(event)
        for id in ids where id != exclude {
            guard let socket = sockets[id] else { continue }
            switch socket.face {
            case .pusher:
                if let memberEventUser, socket.user(on: channel) == memberEventUser { continue }
                if pusherText == nil { pusherText = Self.pusherText(message, event: event, channel: channel) }
                socket.send(pusherText!)
            case .ryos:
                guard ryosDeliverable else { continue }
                if ryosText == nil { ryosText = RyOSRealtimeProtocol.event(event, channel: channel, data: message["data"]) }
                socket.send(ryosText!)
            case .echo:
                continue  // never in the hub
            }
        }
    }

    /// An event as Pusher clients receive it: `data` a string, `user_id` when the message names one.
    private static func pusherText(_ message: [String: JSONValue], event: String, channel: String) -> String {
        let data: String
        switch message["data"] {
        case .string(let text)?: data = text
        case let value?: data = value.serialized
        case nil: data = "{}"
        }
        var out: [String: JSONValue] = ["event": .string(event), "channel": .string(channel), "data": .string(data)]
        if let user = message["user_id"]?.string { out["user_id"] = .string(user) }
        return JSONValue.object(out).serialized
    }

    // MARK: - Access

    /// The access epoch: how many access changes this worker has heard of. A subscribe reads it before its access
    /// check.
    var accessEpoch: UInt64 { accessChanges.epoch }

    /// Whether an access change that may concern `holder`'s subscription to `channel` arrived after `epoch`. Asked
    /// once the subscription is registered (holder set, socket in the channel): a change arriving later finds it.
    func accessChanged(since epoch: UInt64, channel: String, holder: String) -> Bool {
        accessChanges.mayConcern(since: epoch, channel: channel, holder: holder)
    }

    /// `user` signed out somewhere (a logout or logout-all on any worker, which also forgot their grants): on this
    /// worker their governed subscriptions end as when access ends (AccessRevoked; ryOS's `subscription_error`), a
    /// ryOS socket opened with their ticket becomes anonymous, and a connection signed in as them is closed (4009),
    /// as `terminate_connections` does. Their public subscriptions on other connections stay.
    func signOut(_ user: String) {
        // First, so a subscribe of theirs still in its access check checks again.
        accessChanges.record(AccessChange(user: user, prefix: ""))
        var ended: [(socket: PusherSocket, channel: String)] = []
        for socket in sockets.values {
            let (channels, signedIn) = socket.state.withLock { state -> ([String], Bool) in
                if state.ryosUser == user { state.ryosUser = nil }
                let channels = state.holders.filter { ChannelAccess.isGoverned($0.key) && $0.value == user }.map(\.key)
                return (channels, state.signedIn == user)
            }
            for channel in channels { ended.append((socket, channel)) }
            if signedIn { socket.close(.unknown(4009), "Signed out") }
        }
        guard !ended.isEmpty else { return }
        Task {
            for (socket, channel) in ended { await self.revoke(socket, channel: channel) }
        }
    }

    /// Re-checks the subscriptions `change` concerns on this worker's sockets and ends those no longer allowed. A
    /// subscription to a governed channel with no holder (none should exist: a subscribe needs one) is ended.
    func recheck(_ change: AccessChange) async {
        var targets: [(socket: PusherSocket, channel: String, holder: String)] = []
        var holderless: [(socket: PusherSocket, channel: String)] = []
        for (channel, ids) in channelSockets where ChannelAccess.isGoverned(channel) {
            guard change.channels.contains(channel) || change.prefix.map({ channel.hasPrefix($0) }) == true else { continue }
            for id in ids {
                guard let socket = sockets[id] else { continue }
                guard let holder = socket.holder(on: channel) else {
                    holderless.append((socket, channel))
                    continue
                }
                guard change.concerns(channel: channel, holder: holder) else { continue }
                targets.append((socket, channel, holder))
            }
        }
        for target in holderless { await revoke(target.socket, channel: target.channel) }
        var verdicts: [String: Bool] = [:]
        for target in targets {
            let key = target.channel + "\u{0}" + target.holder
            if verdicts[key] == nil {
                do {
                    verdicts[key] = try await access.allows(target.channel, user: target.holder)
                } catch {
                    logger.warning("Access re-check failed; the subscription stays", metadata: [
                        "channel": "\(target.channel)", "error": "\(error)",
                    ])
                    continue
                }
            }
            if verdicts[key] == false { await revoke(target.socket, channel: target.channel) }
        }
    }

    /// Ends one subscription whose access ended: the client is told (`pusher:subscription_error`, AccessRevoked,
    /// 403; a ryOS socket ryOS's `subscription_error`), the socket leaves the channel and its presence there is
    /// removed and announced.
    func revoke(_ socket: PusherSocket, channel: String) async {
        let (subscribed, user) = socket.takeChannel(channel)
        guard subscribed else { return }
        Counter(label: "subscriptions_revoked_total").increment()
        switch socket.face {
        case .pusher:
            socket.send(PusherProtocol.subscriptionError(
                channel: channel, type: "AccessRevoked", error: "Access to this channel ended", status: 403
            ))
        case .ryos:
            socket.send(RyOSRealtimeProtocol.subscriptionError(channel: channel))
        case .echo:
            break  // never in the hub
        }
        await leave(socket, channel: channel, user: user)
    }

    /// After Redis came back: pub/sub may have dropped member events, so send presence again.
    private func resendPresence() async {
        logger.info("Redis pub/sub reconnected; re-sending presence to presence-channel sockets")
        // Redis may have restarted empty: put this worker's presence back first.
        await refreshPresence()
        for (channel, ids) in channelSockets where channel.hasPrefix("presence-") {
            // At most PUSHER_MAX_PRESENCE_MEMBERS members and the true count, as on subscribing; on a larger
            // room-backed channel each socket's own user is listed too (one read for those left out).
            guard let snapshot = try? await presence.snapshot(channel: channel, limit: settings.maxPresenceMembers) else { continue }
            let text = PusherProtocol.subscriptionSucceeded(channel: channel, presence: snapshot)
            // ryOS sockets have no presence frames (on `presence-global` they only listen to events).
            let targets = ids.compactMap { sockets[$0] }.filter { $0.face == .pusher }
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

    /// Every (presence channel, user, socket) this worker holds.
    private func presenceEntries() -> [(channel: String, user: String, socket: String)] {
        sockets.values.flatMap { socket in
            socket.state.withLock { state in
                state.channels.compactMap { channel, user in user.map { (channel: channel, user: $0, socket: socket.id) } }
            }
        }
    }

    /// Whether `entry`'s socket is open here and still on its presence channel as its user.
    private func holds(_ entry: (channel: String, user: String, socket: String)) -> Bool {
        sockets[entry.socket]?.user(on: entry.channel) == entry.user
    }

    /// Refreshes this worker's presence in Redis, a bounded batch per round trip. The snapshot is taken once, but each
    /// batch is checked against the sockets as they are when it goes out (what left meanwhile is not sent), and Redis
    /// refreshes only sockets still recorded (`socket_refresh.lua`): a leave that lands while a batch is in flight is
    /// never undone.
    func refreshPresence() async {
        let entries = presenceEntries()
        let size = refreshBatch / 2
        for start in stride(from: 0, to: entries.count, by: size) {
            let batch = entries[start..<min(start + size, entries.count)].filter { holds($0) }
            guard !batch.isEmpty else { continue }
            do {
                let lapsed = try await presence.refresh(batch)
                for entry in lapsed { await restorePresence(entry) }
            } catch {
                logger.debug("Presence refresh failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// A socket's presence lapsed (swept after a stall, or removed by an access change this worker has not seen yet):
    /// it comes back only if the user may still be there; otherwise the subscription ends.
    private func restorePresence(_ entry: (channel: String, user: String, socket: String)) async {
        guard let socket = sockets[entry.socket], holds(entry) else { return }
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

    /// Whether `socket` is on `channel` here.
    private func isSubscribed(_ entry: (channel: String, socket: String)) -> Bool {
        channelSockets[entry.channel]?.contains(entry.socket) == true
    }

    /// Refreshes this worker's channel occupancy in Redis, a bounded batch per round trip. As for presence, each
    /// batch is checked against the subscriptions as they are when it goes out, and Redis refreshes only entries still
    /// recorded and live (`occupancy_refresh.lua`), so a leave meanwhile is never undone (no `channel_occupied` after
    /// its `channel_vacated`, no count that includes it). An entry that lapsed while its socket is still here (a
    /// stall, Redis restarted empty) is touched again, which announces what that changes.
    func refreshOccupancy() async {
        let pairs = channelSockets.flatMap { channel, ids in ids.map { (channel: channel, socket: $0) } }
        for start in stride(from: 0, to: pairs.count, by: refreshBatch) {
            let batch = pairs[start..<min(start + refreshBatch, pairs.count)].filter { isSubscribed($0) }
            guard !batch.isEmpty else { continue }
            do {
                let lapsed = try await occupancy.refresh(batch, ttl: occupancyTTL)
                for index in lapsed { await restoreOccupancy(batch[index]) }
            } catch {
                logger.debug("Occupancy refresh failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// A subscription whose occupancy entry was gone or lapsed at a refresh: recorded again if the socket is still on
    /// the channel, and taken back if it left while that was on its way.
    private func restoreOccupancy(_ entry: (channel: String, socket: String)) async {
        guard isSubscribed(entry) else { return }
        _ = try? await occupancy.touch([entry], ttl: occupancyTTL)
        if !isSubscribed(entry) { _ = try? await occupancy.remove(channel: entry.channel, socket: entry.socket) }
    }

    /// Pings silent sockets (`pusher:ping`; a ryOS socket a WebSocket ping frame, which browsers answer themselves)
    /// and closes dead ones (4201).
    private func checkActivity() {
        let now = ContinuousClock.now
        let activityTimeout = Duration.seconds(settings.activityTimeout), pongTimeout = Duration.seconds(settings.pongTimeout)
        for socket in sockets.values {
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

    /// The hub's periodic work until cancelled: liveness every tick, presence every third of its TTL, occupancy
    /// every third of its TTL, and memory handed back after many sockets left.
    private func maintain() async {
        let tick = Duration.milliseconds(max(100, min(1000, settings.pongTimeout * 1000 / 4)))
        let presenceEvery = Duration.milliseconds(max(200, presence.ttl.milliseconds / 3))
        var lastPresence = ContinuousClock.now, lastOccupancy = ContinuousClock.now, lastSettle = ContinuousClock.now
        let settleEvery = Duration.milliseconds(max(250, min(2000, occupancyTTL.milliseconds / 4)))
        while !Task.isCancelled {
            try? await Task.sleep(for: tick)
            checkActivity()
            let now = ContinuousClock.now
            if now - lastPresence >= presenceEvery {
                lastPresence = now
                await refreshPresence()
            }
            if now - lastOccupancy >= occupancyTTL / 3 {
                lastOccupancy = now
                await refreshOccupancy()
            }
            if webhooks != nil, now - lastSettle >= settleEvery {
                lastSettle = now
                await settleLapsedChannels()
            }
            releaseMemoryAfterDrop()
        }
    }

    /// After most of the subscriptions went away (a flood that ended) and the count has settled, shrinks the hub's
    /// tables to their contents and hands freed heap pages back to the system, so the worker's memory follows its load
    /// down instead of staying at its peak.
    private func releaseMemoryAfterDrop() {
        defer { subscriptionsAtLastTick = subscriptionCount }
        if let at = trimAgainAt, ContinuousClock.now >= at {
            trimAgainAt = nil
            MemoryRelease.trim()
        }
        guard peakSubscriptions - subscriptionCount >= 1000, subscriptionCount <= peakSubscriptions / 2 else { return }
        // Wait until the departures are over: memory freed after a trim would stay with the process.
        guard subscriptionCount == subscriptionsAtLastTick, sockets.count == socketsAtLastTrimCheck else {
            socketsAtLastTrimCheck = sockets.count
            return
        }
        peakSubscriptions = subscriptionCount
        channelSockets = Dictionary(uniqueKeysWithValues: channelSockets.map { ($0.key, $0.value) })
        sockets = Dictionary(uniqueKeysWithValues: sockets.map { ($0.key, $0.value) })
        subscriber.compact()
        MemoryRelease.trim()
        // The departures' last work (presence leaves, unsubscribe confirmations) frees more shortly after.
        trimAgainAt = ContinuousClock.now + .seconds(5)
        logger.debug("Memory handed back after many subscriptions ended", metadata: ["subscriptions": "\(subscriptionCount)"])
    }
}
