import Foundation
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
        var clientEventWindow: (second: Int64, count: Int) = (0, 0)
        var closed = false
        /// Set by ``close(_:_:)``: the writer sends this close frame before anything else still queued.
        var pendingClose: (WebSocketErrorCode, String)?
    }

    let id: String
    let outbound: AsyncStream<Outgoing>.Continuation
    let state = Mutex(State())
    /// When the client last sent something; the hub closes sockets silent beyond activity_timeout + 30 s (4201).
    let lastActivity = LastActivity()

    init(id: String, outbound: AsyncStream<Outgoing>.Continuation) {
        self.id = id
        self.outbound = outbound
    }

    /// Queues a text frame; a full queue closes the socket (4100) instead of growing memory.
    func send(_ text: String) {
        if case .dropped = outbound.yield(.text(text)) {
            close(.unknown(4100), "Over capacity: client too slow")
        }
    }

    func close(_ code: WebSocketErrorCode, _ reason: String) {
        let first = state.withLock { state -> Bool in
            defer { state.closed = true }
            if !state.closed { state.pendingClose = (code, reason) }
            return !state.closed
        }
        guard first else { return }
        // Wake the writer even when the queue is full; it checks `pendingClose` before each write.
        if case .dropped = outbound.yield(.close(code, reason)) { outbound.finish() }
    }

    /// The close the writer must send now, if one was requested.
    var pendingClose: (WebSocketErrorCode, String)? {
        state.withLock { $0.pendingClose }
    }

    /// The user id this socket has on `channel` (presence channels), if any.
    func user(on channel: String) -> String? {
        state.withLock { $0.channels[channel] ?? nil }
    }

    /// All user ids this socket has on presence channels.
    var users: Set<String> {
        state.withLock { Set($0.channels.values.compactMap { $0 }) }
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
