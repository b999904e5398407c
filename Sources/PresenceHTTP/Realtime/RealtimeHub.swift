import Foundation
import Logging
import Metrics
import NIOCore
import NIOWebSocket
import PresenceCore
import Redis
import ServiceLifecycle
import Synchronization

/// This worker's side of the fan-out: its WebSockets, which channels they use, and one Redis subscriber that
/// listens to exactly those channels (`ch:<channel>`, reference-counted: subscribed with the first local socket,
/// unsubscribed with the last; no PSUBSCRIBE). Whatever any worker publishes reaches the local sockets here.
actor RealtimeHub: Service {
    let redis: RedisClient
    let subscriber: RedisSubscriber
    let presence: ChannelPresence
    let settings: PusherSettings
    /// Told about revoked tokens (`tokens:revoked`), and emptied when the subscriber reconnects.
    let tokenCache: ExpiringCache<String>
    let logger: Logger
    /// How long a socket's subscription counts in Redis without a refresh.
    let occupancyTTL: Duration = .seconds(60)

    private var sockets: [String: PusherSocket] = [:] {
        didSet { socketsGauge.record(sockets.count) }
    }
    private var channelSockets: [String: Set<String>] = [:] {
        didSet { if channelSockets.count != oldValue.count { subscriptionsGauge.record(channelSockets.count) } }
    }
    private let socketsGauge = Gauge(label: "websocket_connections")
    private let subscriptionsGauge = Gauge(label: "pubsub_subscriptions")

    init(redis: RedisClient, presence: ChannelPresence, settings: PusherSettings, tokenCache: ExpiringCache<String>, logger: Logger) {
        self.redis = redis
        self.subscriber = redis.makeSubscriber()
        self.presence = presence
        self.settings = settings
        self.tokenCache = tokenCache
        self.logger = logger
    }

    /// Number of open sockets on this worker.
    var socketCount: Int { sockets.count }

    func add(_ socket: PusherSocket) async {
        sockets[socket.id] = socket
        if sockets.count == 1 { try? await subscriber.subscribe([RedisKeys.pusherControl]) }
    }

    /// Forgets a socket and leaves every channel it was on.
    func remove(_ socket: PusherSocket) async {
        guard sockets.removeValue(forKey: socket.id) != nil else { return }
        let channels = socket.state.withLock { state -> [String: String?] in
            defer { state.channels = [:] }
            return state.channels
        }
        for (channel, user) in channels {
            await leave(socket, channel: channel, user: user)
        }
    }

    /// Adds `socket` to `channel` locally (subscribing in Redis if it is the first) and records it in Redis.
    func join(_ socket: PusherSocket, channel: String) async throws {
        var members = channelSockets[channel, default: []]
        let first = members.isEmpty
        members.insert(socket.id)
        channelSockets[channel] = members
        if first {
            do {
                try await subscriber.subscribe([RedisKeys.broadcastChannel(channel)])
            } catch {
                logger.warning("Subscribe failed; it will be retried on reconnect", metadata: ["channel": "\(channel)", "error": "\(error)"])
            }
        }
        _ = try? await redis.run(occupancyCalls([(channel, socket.id)]))
    }

    func leave(_ socket: PusherSocket, channel: String, user: String?) async {
        if var members = channelSockets[channel] {
            members.remove(socket.id)
            if members.isEmpty {
                channelSockets[channel] = nil
                try? await subscriber.unsubscribe([RedisKeys.broadcastChannel(channel)])
            } else {
                channelSockets[channel] = members
            }
        }
        _ = try? await redis.send(RedisCommand("ZREM", RedisKeys.pusherChannelSockets(channel), socket.id))
        if let user {
            do {
                try await presence.detach(channel: channel, user: user, socket: socket.id)
            } catch {
                logger.warning("Presence detach failed; the entry will lapse", metadata: ["channel": "\(channel)", "error": "\(error)"])
            }
        }
    }

    func occupancyCalls(_ pairs: [(channel: String, socket: String)]) -> [RedisScriptCall] {
        let ttl = String(occupancyTTL.milliseconds)
        var calls: [RedisScriptCall] = []
        var channels = Set<String>()
        for pair in pairs {
            calls.append(RedisScriptCall(Scripts.expiringTouch, keys: [RedisKeys.pusherChannelSockets(pair.channel)], arguments: [pair.socket, ttl]))
            channels.insert(pair.channel)
        }
        for channel in channels {
            calls.append(RedisScriptCall(Scripts.expiringTouch, keys: [RedisKeys.pusherChannels], arguments: [channel, ttl]))
        }
        return calls
    }

    // MARK: - Running

    nonisolated func run() async throws {
        // Wanted for the worker's whole life; subscribed as soon as Redis answers.
        try? await subscriber.subscribe([RedisKeys.tokensRevoked])
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.consume() }
            group.addTask { await self.refreshLoop() }
            await withGracefulShutdownHandler {
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(200))
                }
            } onGracefulShutdown: {}
            await self.closeAll(code: .unknown(4200), reason: "Server shutting down")
            // Give sockets a moment to flush their close frames and leave their presence channels.
            try? await Task.sleep(for: .milliseconds(300))
            await self.subscriber.close()
            group.cancelAll()
        }
    }

    func closeAll(code: WebSocketErrorCode, reason: String) {
        for socket in sockets.values { socket.close(code, reason) }
    }

    private func consume() async {
        for await event in subscriber.events {
            switch event {
            case .message(let channel, let payload):
                dispatch(redisChannel: channel, payload: payload)
            case .reconnected:
                tokenCache.removeAll()
                await resendPresence()
            }
        }
    }

    private func dispatch(redisChannel: String, payload: ByteBuffer) {
        if redisChannel == RedisKeys.tokensRevoked {
            tokenCache.remove(String(buffer: payload))
            return
        }
        guard let message = JSONValue.parse(payload.readableBytesView)?.object else { return }
        if redisChannel == RedisKeys.pusherControl {
            if let user = message["terminate"]?.string {
                for socket in sockets.values where socket.users.contains(user) {
                    socket.close(.unknown(4009), "Connection terminated by the server")
                }
            }
            return
        }
        guard redisChannel.hasPrefix("ch:"), let event = message["event"]?.string else { return }
        let channel = String(redisChannel.dropFirst(3))
        guard let ids = channelSockets[channel] else { return }
        let data: String
        switch message["data"] {
        case .string(let text)?: data = text
        case let value?: data = value.serialized
        case nil: data = "{}"
        }
        var out: [String: JSONValue] = ["event": .string(event), "channel": .string(channel), "data": .string(data)]
        if let user = message["user_id"]?.string { out["user_id"] = .string(user) }
        let text = JSONValue.object(out).serialized
        let exclude = message["socket_id"]?.string
        let memberEventUser = event.hasPrefix("pusher_internal:member_") ? message["data"]?["user_id"]?.string : nil
        for id in ids where id != exclude {
            guard let socket = sockets[id] else { continue }
            if let memberEventUser, socket.user(on: channel) == memberEventUser { continue }
            socket.send(text)
        }
    }

    /// After Redis came back: pub/sub may have dropped member events, so send presence again.
    private func resendPresence() async {
        logger.info("Redis pub/sub reconnected; re-sending presence to presence-channel sockets")
        // Redis may have restarted empty: put this worker's presence back first.
        try? await presence.refresh(presenceEntries())
        for (channel, ids) in channelSockets where channel.hasPrefix("presence-") {
            guard let members = try? await presence.members(channel: channel) else { continue }
            let text = PusherProtocol.subscriptionSucceeded(channel: channel, members: members)
            for id in ids { sockets[id]?.send(text) }
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

    private func refreshLoop() async {
        let every = Duration.milliseconds(max(200, presence.ttl.milliseconds / 3))
        var sinceOccupancy = Duration.zero
        while !Task.isCancelled {
            try? await Task.sleep(for: every)
            do {
                try await presence.refresh(presenceEntries())
            } catch {
                logger.debug("Presence refresh failed", metadata: ["error": "\(error)"])
            }
            let silenceLimit = Duration.seconds(settings.activityTimeout + 30)
            for socket in sockets.values where socket.lastActivity.silence > silenceLimit {
                socket.close(.unknown(4201), "Pong reply not received")
            }
            sinceOccupancy += every
            if sinceOccupancy >= occupancyTTL / 3 {
                sinceOccupancy = .zero
                let pairs = channelSockets.flatMap { channel, ids in ids.map { (channel: channel, socket: $0) } }
                if !pairs.isEmpty { _ = try? await redis.run(occupancyCalls(pairs)) }
            }
        }
    }
}
