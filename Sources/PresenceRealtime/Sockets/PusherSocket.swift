import PresenceCore
import Foundation
import NIOCore
import NIOWebSocket
import Synchronization

/// One client WebSocket as the hub sees it: its socket id, where its frames go (its ``PusherChannelHandler``, on the
/// connection's event loop) and what it is subscribed to. Safe to use from any task.
package final class PusherSocket: Sendable {
    struct State {
        /// Subscribed channels → the user id on presence channels.
        var channels: [String: String?] = [:]
        /// Subscribed channels whose access this service decides → the user whose access the subscription rides on
        /// (the presence user, or whom `/pusher/auth` signed a private channel for).
        var holders: [String: String] = [:]
        var clientEventWindow: (second: Int64, count: Int) = (0, 0)
        /// The user this connection signed in as (`pusher:signin`), if any.
        var signedIn: String?
        /// The users whose online and offline this connection is told of (`user_data.watchlist` at sign-in).
        var watchlist: Set<String> = []
        /// A ryOS socket's user, from the ticket it opened with (``SocketFace/ryos``); `nil`: anonymous.
        var ryosUser: String?
        /// Recoveries asked for on this connection (``PusherEndpoint``'s recover: at most one per channel it may hold).
        var recoveries = 0
        var closed = false
    }

    let id: String
    /// The protocol the client speaks.
    let face: SocketFace
    /// The socket's channel handler, reached on its event loop.
    let outbound: PusherOutbound
    let state = Mutex(State())
    /// When the client last sent something; the hub pings it after `activity_timeout` and closes it (4201) when no
    /// reply comes within `pong_timeout`.
    let activity = SocketActivity()
    /// The connection underneath, closed outright when a close frame cannot get through in time.
    let channel: (any Channel)?
    /// How long a close waits for the client before the connection is dropped.
    let closeGrace: Duration

    init(id: String, outbound: PusherOutbound, channel: (any Channel)?, closeGrace: Duration, face: SocketFace = .pusher) {
        self.id = id
        self.face = face
        self.outbound = outbound
        self.channel = channel
        self.closeGrace = closeGrace
    }

    /// Queues a text frame; a queue past `PusherSettings.maxQueuedMessages` closes the socket (4100) instead of
    /// growing memory.
    func send(_ text: String) {
        send(OutboundFrame(text: text))
    }

    /// Queues a frame serialized already (a broadcast's is shared by every socket it goes to).
    func send(_ frame: OutboundFrame) {
        outbound.run { $0.send(frame) }
    }

    /// Sends a WebSocket ping control frame (the liveness check of a ryOS socket, whose protocol has no server ping).
    func ping() {
        outbound.run { $0.ping() }
    }

    /// Sends the close frame ahead of anything still queued, and drops the connection if the client has not
    /// closed it within `grace` (default ``closeGrace``): a client that stopped reading never takes the frame.
    func close(_ code: WebSocketErrorCode, _ reason: String, grace: Duration? = nil) {
        let first = state.withLock { state -> Bool in
            defer { state.closed = true }
            return !state.closed
        }
        guard first else { return }
        let grace = grace ?? closeGrace
        outbound.run { $0.close(code, reason, grace: grace) }
    }

    /// Marks the socket closed without a frame (the handler closed it itself, or the connection is gone).
    func markClosed() {
        state.withLock { $0.closed = true }
    }

    /// Drops the connection now, without a close handshake.
    func drop() {
        channel?.close(promise: nil)
    }

    /// Forgets every channel, returning what the socket was subscribed to (channel → user on presence channels).
    func takeChannels() -> [String: String?] {
        state.withLock { state in
            defer { state.channels = [:]; state.holders = [:] }
            return state.channels
        }
    }

    /// Forgets one channel; returns whether the socket was on it and its presence user there.
    func takeChannel(_ channel: String) -> (subscribed: Bool, user: String?) {
        state.withLock { state in
            state.holders[channel] = nil
            guard let user = state.channels.removeValue(forKey: channel) else { return (false, nil) }
            return (true, user)
        }
    }

    /// The user whose access the subscription to `channel` rides on, when this service decides that channel's access.
    func holder(on channel: String) -> String? {
        state.withLock { $0.holders[channel] }
    }

    /// The user id this socket has on `channel` (presence channels), if any.
    func user(on channel: String) -> String? {
        state.withLock { $0.channels[channel] ?? nil }
    }

    /// All user ids this socket acts as: on presence channels, on the private channels it was signed for, the one it
    /// signed in as, and a ryOS socket's ticket user.
    var users: Set<String> {
        state.withLock { state in
            var users = Set(state.channels.values.compactMap { $0 }).union(state.holders.values)
            if let signedIn = state.signedIn { users.insert(signedIn) }
            if let ryosUser = state.ryosUser { users.insert(ryosUser) }
            return users
        }
    }

    /// Whether this connection watches `user` (its sign-in's watchlist).
    func watches(_ user: String) -> Bool {
        state.withLock { $0.watchlist.contains(user) }
    }

    /// The user this connection signed in as, if any.
    var signedIn: String? {
        get { state.withLock { $0.signedIn } }
    }

    /// A ryOS socket's user (its ticket's), if any.
    var ryosUser: String? {
        state.withLock { $0.ryosUser }
    }

    /// Counts one client event; `false` past the per-second limit.
    func allowClientEvent(limit: Int) -> Bool {
        let second = Int64(Date().timeIntervalSince1970)
        return state.withLock { state in
            if state.clientEventWindow.second != second { state.clientEventWindow = (second, 0) }
            state.clientEventWindow.count += 1
            return state.clientEventWindow.count <= limit
        }
    }

    /// `<digits>.<digits>`, unique enough across workers.
    static func makeID() -> String {
        "\(UInt32.random(in: 1...UInt32.max)).\(UInt32.random(in: 1...UInt32.max))"
    }
}
