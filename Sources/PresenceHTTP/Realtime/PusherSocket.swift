import Foundation
import NIOCore
import NIOWebSocket
import Synchronization

/// One client WebSocket as the hub sees it: its socket id, its outbound queue and what it is subscribed to.
final class PusherSocket: Sendable {
    /// What goes out to the client.
    enum Outgoing: Sendable {
        case text(String)
        case close(WebSocketErrorCode, String)
    }

    struct State {
        /// Subscribed channels → the user id on presence channels.
        var channels: [String: String?] = [:]
        /// Subscribed channels whose access this service decides → the user whose access the subscription rides on
        /// (the presence user, or whom `/pusher/auth` signed a private channel for).
        var holders: [String: String] = [:]
        var clientEventWindow: (second: Int64, count: Int) = (0, 0)
        var closed = false
        /// Set by ``close(_:_:)``: the writer sends this close frame before anything else still queued.
        var pendingClose: (WebSocketErrorCode, String)?
    }

    let id: String
    let outbound: AsyncStream<Outgoing>.Continuation
    let state = Mutex(State())
    /// When the client last sent something; the hub pings it after `activity_timeout` and closes it (4201) when no
    /// reply comes within `pong_timeout`.
    let activity = SocketActivity()
    /// The connection underneath, closed outright when a close frame cannot get through in time.
    let channel: (any Channel)?
    /// How long a close waits for the client before the connection is dropped.
    let closeGrace: Duration

    init(id: String, outbound: AsyncStream<Outgoing>.Continuation, channel: (any Channel)?, closeGrace: Duration) {
        self.id = id
        self.outbound = outbound
        self.channel = channel
        self.closeGrace = closeGrace
    }

    /// Queues a text frame; a full queue closes the socket (4100) instead of growing memory.
    func send(_ text: String) {
        if case .dropped = outbound.yield(.text(text)) {
            close(.unknown(4100), "Over capacity: client too slow")
        }
    }

    /// Sends the close frame ahead of anything still queued, and drops the connection if the client has not
    /// closed it within `grace` (default ``closeGrace``): a client that stopped reading never takes the frame.
    func close(_ code: WebSocketErrorCode, _ reason: String, grace: Duration? = nil) {
        let first = state.withLock { state -> Bool in
            defer { state.closed = true }
            if !state.closed { state.pendingClose = (code, reason) }
            return !state.closed
        }
        guard first else { return }
        // Wake the writer even when the queue is full; it checks `pendingClose` before each write.
        if case .dropped = outbound.yield(.close(code, reason)) { outbound.finish() }
        if let channel {
            channel.eventLoop.scheduleTask(in: TimeAmount(grace ?? closeGrace)) { channel.close(promise: nil) }
        }
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

    /// The close the writer must send now, if one was requested.
    var pendingClose: (WebSocketErrorCode, String)? {
        state.withLock { $0.pendingClose }
    }

    /// The user id this socket has on `channel` (presence channels), if any.
    func user(on channel: String) -> String? {
        state.withLock { $0.channels[channel] ?? nil }
    }

    /// All user ids this socket acts as: on presence channels, and on the private channels it was signed for.
    var users: Set<String> {
        state.withLock { Set($0.channels.values.compactMap { $0 }).union($0.holders.values) }
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
