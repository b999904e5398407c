import Foundation
import Logging
import Metrics
import NIOCore
import NIOWebSocket
import PresenceCore
import Synchronization

/// The worker's Pusher endpoint: what the service does for every client WebSocket speaking the Pusher protocol (or
/// ryOS's `/ws` frames). The socket's ``PusherChannelHandler`` reads and writes frames on the event loop, and hands
/// what needs the hub or Redis here, through the socket's ``PusherInbox``. One per worker, shared by reference: every
/// socket's handler and inbox hold it.
package final class PusherEndpoint: Sendable {
    /// The largest message (and frame) a client may send: larger closes the socket with 1009.
    package static let maxMessageSize = 64 * 1024

    /// How long a closed socket's client gets to answer the close frame before the connection is dropped.
    static let closeGrace = Duration.seconds(1)

    let hub: RealtimeHub
    /// Where client events go (to every worker's subscribers of the channel).
    let events: any EventPublisher
    let presence: ChannelPresence
    /// Who may hold which channel: checked again when a signed subscription is made.
    let access: ChannelAccess
    /// Presence changes per user: presence-channel subscribes count, like room switches.
    let presenceLimiter: SlidingWindowLimiter
    let settings: PusherSettings
    let signer: PusherSigner
    /// Cache channels' last events, sent to each new subscriber.
    let cache: any ChannelCache
    /// The tickets ryOS sockets (`/ws`) open with.
    let tickets: RealtimeTickets
    /// Recoverable channels' positions and retained events (`nil`: recovery is off).
    let recovery: (any ChannelRecoveryStorage)?
    /// Which channels are recoverable.
    let recoveryPolicy: RecoveryPolicy
    /// The test-only echo socket's path (`WEBSOCKET_ECHO_PATH`, ``SocketFace/echo``); `nil`, the default: none.
    package let echoPath: String?
    let logger: Logger

    package init(
        hub: RealtimeHub, events: any EventPublisher, presence: ChannelPresence, access: ChannelAccess,
        presenceLimiter: SlidingWindowLimiter, settings: PusherSettings, signer: PusherSigner, cache: any ChannelCache,
        tickets: RealtimeTickets, recovery: (any ChannelRecoveryStorage)? = nil, recoveryPolicy: RecoveryPolicy = RecoveryPolicy(enabled: false),
        echoPath: String? = nil, logger: Logger
    ) {
        self.hub = hub
        self.recovery = recoveryPolicy.enabled ? recovery : nil
        self.recoveryPolicy = recoveryPolicy
        self.echoPath = echoPath
        self.tickets = tickets
        self.cache = cache
        self.events = events
        self.presence = presence
        self.access = access
        self.presenceLimiter = presenceLimiter
        self.settings = settings
        self.signer = signer
        self.logger = logger
    }

    /// The socket is up (its ``PusherChannelHandler`` checked key, protocol and quota): it joins the hub and gets
    /// `pusher:connection_established`, or 4200 while the worker is stopping.
    func open(_ socket: PusherSocket) async {
        guard await hub.add(socket) else {
            socket.send(PusherProtocol.error("Server shutting down", code: 4200))
            socket.close(.unknown(4200), "Server shutting down")
            return
        }
        socket.send(PusherProtocol.connectionEstablished(socketID: socket.id, activityTimeout: settings.activityTimeout))
    }

    /// The connection is gone: the socket leaves the hub and every channel (presence removed and announced).
    func closed(_ socket: PusherSocket) async {
        await hub.remove(socket)
    }

    /// One text message from the client.
    func handle(_ text: String, socket: PusherSocket) async {
        guard let message = JSONValue.parse(Array(text.utf8))?.object, let event = message["event"]?.string else {
            socket.send(PusherProtocol.error("Invalid message: expected a JSON object with an event", code: nil))
            return
        }
        // `data` may be an object or a JSON string.
        var data = message["data"] ?? .null
        if case .string(let s) = data, let parsed = JSONValue.parse(Array(s.utf8)), parsed.object != nil { data = parsed }
        switch event {
        case "pusher:ping":
            socket.send(PusherProtocol.message("pusher:pong", data: "{}"))
        case "pusher:pong":
            break
        case "pusher:subscribe":
            await subscribe(data, socket: socket)
        case "pusher:signin":
            await signin(data, socket: socket)
        case "pusher:unsubscribe":
            guard let channel = data["channel"]?.string, PusherProtocol.isValidChannel(channel, maxLength: settings.maxChannelName) else { return }
            let (subscribed, user) = socket.takeChannel(channel)
            if subscribed { await hub.leave(socket, channel: channel, user: user) }
        default:
            if event.hasPrefix("client-") {
                await clientEvent(event, channel: message["channel"]?.string, data: message["data"] ?? .null, socket: socket)
            } else {
                socket.send(PusherProtocol.error("Unsupported event \(event)", code: nil))
            }
        }
    }

    private func subscribe(_ data: JSONValue, socket: PusherSocket) async {
        guard let channel = data["channel"]?.string else {
            socket.send(PusherProtocol.error("pusher:subscribe needs a channel", code: nil))
            return
        }
        guard PusherProtocol.isValidChannel(channel, maxLength: settings.maxChannelName) else {
            socket.send(PusherProtocol.isWellFormedChannel(channel)
                ? PusherProtocol.channelNameTooLong(channel: channel, max: settings.maxChannelName)
                : PusherProtocol.subscriptionError(channel: channel, type: "InvalidChannel", error: "Invalid channel name", status: 400))
            return
        }
        // A user's own channel of server events: only for a connection signed in as that user.
        if channel.hasPrefix(PusherProtocol.serverToUserPrefix),
           socket.signedIn != String(channel.dropFirst(PusherProtocol.serverToUserPrefix.count)) {
            socket.send(PusherProtocol.subscriptionError(channel: channel, type: "AuthError", error: "Sign in as this user first", status: 403))
            return
        }
        let (already, count) = socket.state.withLock { ($0.channels[channel] != nil, $0.channels.count) }
        if already { return }
        guard count < settings.maxChannelsPerSocket else {
            socket.send(PusherProtocol.subscriptionError(
                channel: channel, type: "LimitReached",
                error: "At most \(settings.maxChannelsPerSocket) channels per connection", status: 429
            ))
            return
        }
        let auth = data["auth"]?.string ?? ""
        var user: String?
        var userInfo: JSONValue?
        if channel.hasPrefix("presence-") {
            let channelData = data["channel_data"]?.string ?? ""
            guard signer.verify(auth: auth, socketID: socket.id, channel: channel, channelData: channelData) else {
                socket.send(PusherProtocol.subscriptionError(channel: channel, type: "AuthError", error: "Invalid signature", status: 401))
                return
            }
            let parsed = JSONValue.parse(Array(channelData.utf8))
            user = parsed?["user_id"]?.string ?? parsed?["user_id"]?.int.map(String.init)
            guard user != nil else {
                socket.send(PusherProtocol.subscriptionError(channel: channel, type: "AuthError", error: "channel_data needs a user_id", status: 400))
                return
            }
            // The member's user_info, kept as signed (Pusher's 1 KB at most, PUSHER_MAX_USER_INFO_BYTES).
            userInfo = parsed?["user_info"]
            if let userInfo, userInfo.serialized.utf8.count > settings.maxUserInfoBytes {
                socket.send(PusherProtocol.userInfoTooLarge(channel: channel, max: settings.maxUserInfoBytes))
                return
            }
        } else if channel.hasPrefix("private-") {
            guard signer.verify(auth: auth, socketID: socket.id, channel: channel, channelData: nil) else {
                socket.send(PusherProtocol.subscriptionError(channel: channel, type: "AuthError", error: "Invalid signature", status: 401))
                return
            }
        }
        // A signature is a grant of the past: on a channel this service governs it subscribes only while whom
        // `/pusher/auth` gave it to (the grant record) has access now. The hub's access epoch, read first, tells after
        // the registration whether an access change came in meanwhile (``confirmAccess``).
        var holder = user
        var accessEpoch: UInt64?
        if ChannelAccess.isGoverned(channel) {
            accessEpoch = await hub.accessEpoch
            switch await admit(channel, user: user, socket: socket) {
            case .success(let granted): holder = granted
            case .failure(let refusal): return socket.send(refusal.frame(channel: channel))
            }
        }
        if let user {
            let decision = try? await presenceLimiter.check(user)
            if let decision, !decision.allowed {
                socket.send(PusherProtocol.subscriptionError(
                    channel: channel, type: "LimitReached",
                    error: "Too many presence changes: retry in \(decision.retryAfterSeconds) s", status: 429
                ))
                return
            }
        }
        let fresh = socket.state.withLock { state -> Bool in
            guard state.channels[channel] == nil else { return false }
            state.channels[channel] = .some(user)
            if let holder { state.holders[channel] = holder }
            return true
        }
        guard fresh else { return }
        // A recoverable channel: its live events are held from the join until the answer and the catch-up are out.
        let recoverable = recovery != nil && recoveryPolicy.isRecoverable(channel)
        do {
            try await hub.join(socket, channel: channel, hold: recoverable)
            if let accessEpoch, let holder, !(await confirmAccess(channel, holder: holder, since: accessEpoch, socket: socket)) { return }
            let recovered = recoverable ? await recover(channel, asked: data["recover"], socket: socket) : nil
            if let user {
                let (_, snapshot) = try await presence.subscribe(
                    channel: channel, user: user, socket: socket.id, userInfo: userInfo, maxMembers: settings.maxPresenceMembers
                )
                // Revoked or closed while attaching: the presence goes too (the client was told, if still there).
                if socket.user(on: channel) != user { try? await presence.detach(channel: channel, user: user, socket: socket.id); return }
                socket.send(PusherProtocol.subscriptionSucceeded(channel: channel, presence: snapshot, recovery: recovered))
            } else {
                socket.send(PusherProtocol.subscriptionSucceeded(channel: channel, recovery: recovered))
            }
            if let recovered, recovered.recovered {
                for frame in hub.catchUp(recovered.events, channel: channel, for: socket) { socket.send(frame) }
            }
            if recoverable { await hub.release(socket, channel: channel, at: recovered?.position) }
            if CacheChannels.isCache(channel) { await sendCached(channel, to: socket) }
        } catch {
            if error is RealtimeHub.SubscriptionEnded { return }  // revoked or closed meanwhile: the client was told
            _ = socket.takeChannel(channel)
            await hub.leave(socket, channel: channel, user: nil)
            if error is PresenceChannelFull {
                socket.send(PusherProtocol.presenceChannelFull(channel: channel))
                return
            }
            let notFound = (error as? DomainError) == .roomNotFound
            socket.send(PusherProtocol.subscriptionError(
                channel: channel, type: notFound ? "NotFound" : "ServerError",
                error: notFound ? "Room not found" : "Subscription failed", status: notFound ? 404 : 500
            ))
        }
    }

    /// A recoverable subscribe's answer: the channel's position and, when the client's `recover` position (`asked`) is
    /// of the current epoch and in the window, what came after it. A socket recovers at most as many times as it may
    /// hold channels (``PusherSettings/maxChannelsPerSocket``, 100; a reconnecting client opens a new socket): beyond, only the position is
    /// read, so no client makes the service replay a channel's log over and over. `nil` when Redis cannot answer: the
    /// answer then has no `recovery`, and the client reloads as after a `recovered: false`.
    private func recover(_ channel: String, asked: JSONValue?, socket: PusherSocket) async -> ChannelRecovery? {
        guard let recovery else { return nil }
        var position = ChannelPosition(json: asked)
        if position != nil {
            let allowed = socket.state.withLock { state -> Bool in
                state.recoveries += 1
                return state.recoveries <= settings.maxChannelsPerSocket
            }
            if !allowed { position = nil }
        }
        do {
            return try await recovery.recover(channel: channel, from: position)
        } catch {
            logger.warning("Recovery read failed; the subscriber reloads", metadata: ["channel": "\(channel)", "error": "\(error)"])
            return nil
        }
    }

    /// `pusher:signin`: `auth` must sign `<socket_id>::user::<user_data>` with the app secret (the app's server signs it,
    /// with Pusher's libraries or `/pusher/user-auth`), and `user_data` must be a JSON object with a non-empty `id`. A
    /// connection signs in once: another user is refused. A bad sign-in gets `pusher:error` 4009 and the close 4009.
    ///
    /// A signed-in connection joins the app-wide presence of signed-in users (``PusherProtocol/signedInChannel``), and
    /// `user_data.watchlist` (at most 100 user ids) names the users it is told of: those online now at once, then each
    /// one's `online` and `offline` as they happen, on any worker.
    private func signin(_ data: JSONValue, socket: PusherSocket) async {
        guard let auth = data["auth"]?.string, let userData = data["user_data"]?.string,
              signer.verifyUser(auth: auth, socketID: socket.id, userData: userData),
              let parsed = JSONValue.parse(Array(userData.utf8)), let id = parsed["id"]?.string,
              !id.isEmpty, PusherProtocol.isValidChannel(PusherProtocol.serverToUserPrefix + id, maxLength: settings.maxChannelName) else {
            socket.send(PusherProtocol.error("Invalid sign-in: a bad signature, or user_data without a valid id", code: 4009))
            socket.close(.unknown(4009), "Unauthorized")
            return
        }
        let previous = socket.state.withLock { state -> String? in
            defer { if state.signedIn == nil { state.signedIn = id } }
            return state.signedIn
        }
        if let previous, previous != id {
            socket.send(PusherProtocol.error("Already signed in as another user", code: nil))
            return
        }
        var watchlist: [String] = []
        if case .array(let ids)? = parsed["watchlist"] {
            watchlist = Array(ids.compactMap(\.string).filter { $0 != id && PusherProtocol.isValidChannel($0) }.prefix(100))
        }
        socket.state.withLock { $0.watchlist = Set(watchlist) }
        // The user is online (in the app-wide presence) before the client hears it signed in: a client that then
        // closes another connection of the same user does not make the user go offline in between.
        let channel = PusherProtocol.signedInChannel
        if previous == nil {
            socket.state.withLock { $0.channels[channel] = .some(id) }
            do {
                try await hub.join(socket, channel: channel)
                try await presence.join(channel: channel, user: id, socket: socket.id)
            } catch {
                logger.warning("Signed-in presence failed; watchers may not see this user", metadata: ["user": "\(id)", "error": "\(error)"])
            }
        }
        socket.send(PusherProtocol.signinSuccess(userData: userData))
        do {
            let online = try await presence.present(channel: channel, among: watchlist)
            if !online.isEmpty { socket.send(PusherProtocol.watchlistEvents("online", users: online, to: id)) }
        } catch {
            logger.warning("Watchlist state unavailable", metadata: ["user": "\(id)", "error": "\(error)"])
        }
    }

    /// A cache channel's last event, or `pusher:cache_miss` when it has none (or the cache cannot be read: the client
    /// then fetches its initial state itself, as after a miss).
    private func sendCached(_ channel: String, to socket: PusherSocket) async {
        do {
            if let cached = try await cache.last(on: channel) {
                socket.send(cached)
                return
            }
        } catch {
            logger.warning("Cache channel read failed", metadata: ["channel": "\(channel)", "error": "\(error)"])
        }
        socket.send(JSONValue.object(["event": .string("pusher:cache_miss"), "channel": .string(channel)]).serialized)
        await hub.record([WebhookEvent(.cacheMiss, channel: channel)])
    }

    private func clientEvent(_ event: String, channel: String?, data: JSONValue, socket: PusherSocket) async {
        // Pusher's limits, before anything is published (or written to the webhook outbox).
        guard event.unicodeScalars.count <= settings.maxEventName else {
            socket.send(PusherProtocol.eventNameTooLong(max: settings.maxEventName))
            return
        }
        let payload = data.string ?? data.serialized
        guard payload.utf8.count <= settings.maxEventBytes else {
            socket.send(PusherProtocol.eventDataTooLarge(max: settings.maxEventBytes))
            return
        }
        guard let channel, channel.hasPrefix("private-") || channel.hasPrefix("presence-") else {
            socket.send(PusherProtocol.error("Client events are only allowed on private and presence channels", code: nil))
            return
        }
        // End-to-end encrypted channels carry only what the app's server encrypted; a client event would go out in
        // the clear (Pusher refuses them too).
        guard !channel.hasPrefix("private-encrypted-") else {
            socket.send(PusherProtocol.error("Client events are not allowed on encrypted channels", code: nil))
            return
        }
        guard let membership = socket.state.withLock({ $0.channels[channel] }) else {
            socket.send(PusherProtocol.error("Not subscribed to \(channel)", code: nil))
            return
        }
        guard socket.allowClientEvent(limit: settings.clientEventsPerSecond) else {
            socket.send(PusherProtocol.error("Client event rejected: more than \(settings.clientEventsPerSecond) per second", code: 4301))
            return
        }
        await events.publish([BroadcastEvent(
            event: event, channel: channel, data: .string(payload),
            socketID: socket.id, userID: membership ?? nil
        )])
    }
}
