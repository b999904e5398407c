import PresenceCore
import NIOCore
import Synchronization

/// What one socket asked of the service and has not been handled yet, handled in order by a task that exists only
/// while there is something to handle: an idle socket holds no task (and no task's stack).
///
/// The socket's ``PusherChannelHandler`` pushes from the event loop; the drain task pops. Past ``holdAt`` items the
/// handler stops reading from the connection (TCP pushes back on the client) until the backlog is down to
/// ``resumeAt``.
package final class PusherInbox: Sendable {
    enum Item: Sendable {
        /// The WebSocket is up: join the hub, then `pusher:connection_established`.
        case open
        /// A ryOS socket is up: redeem its ticket (if any) for its user, then join the hub; nothing is sent.
        case openRyOS(ticket: String?)
        /// A text message from the client.
        case text(String)
        /// The connection is gone: leave the hub and every channel.
        case closed
    }

    /// Backlog at which reading stops.
    static let holdAt = 32
    /// Backlog at which reading resumes.
    static let resumeAt = 8

    private struct State {
        var items = CircularBuffer<Item>(initialCapacity: 1)
        var draining = false
        var holding = false
    }

    private let state = Mutex(State())
    private let connection: PusherEndpoint
    private let socket: PusherSocket
    /// Called (from the drain task) when the backlog fell to ``resumeAt`` after reading stopped.
    private let resume: @Sendable () -> Void

    init(connection: PusherEndpoint, socket: PusherSocket, resume: @escaping @Sendable () -> Void) {
        self.connection = connection
        self.socket = socket
        self.resume = resume
    }

    /// Queues `item`, starting the drain task when none runs. Returns `true` when the caller should stop reading.
    func push(_ item: Item) -> Bool {
        let (start, hold) = state.withLock { state -> (Bool, Bool) in
            state.items.append(item)
            let start = !state.draining
            state.draining = true
            if state.items.count >= Self.holdAt { state.holding = true }
            return (start, state.holding)
        }
        if start { Task { await self.drain() } }
        return hold
    }

    private func drain() async {
        while let item = next() {
            switch item {
            case .open: await connection.open(socket)
            case .openRyOS(let ticket): await connection.openRyOS(socket, ticket: ticket)
            case .text(let text) where socket.face == .ryos: await connection.handleRyOS(text, socket: socket)
            case .text(let text): await connection.handle(text, socket: socket)
            case .closed: await connection.closed(socket)
            }
        }
    }

    /// The next item, or `nil` (and the drain task ends) when there is none.
    private func next() -> Item? {
        let (item, resumeNow) = state.withLock { state -> (Item?, Bool) in
            guard !state.items.isEmpty else {
                state.draining = false
                return (nil, false)
            }
            let item = state.items.removeFirst()
            guard state.holding, state.items.count <= Self.resumeAt else { return (item, false) }
            state.holding = false
            return (item, true)
        }
        if resumeNow { resume() }
        return item
    }
}
