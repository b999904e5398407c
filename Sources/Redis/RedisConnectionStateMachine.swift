import NIOCore

/// The life of one self-healing Redis connection, as plain state: idle, connecting, ready on a channel, waiting to
/// reconnect (with capped exponential backoff), closed; and the commands that wait for a connection meanwhile (at most
/// `maxWaiting`, each until its deadline).
///
/// It takes events (start, a request, connect succeeded or failed, the channel closed, a timer fired at `now`, close)
/// and returns what to do. It owns no socket, timer or promise, so it is tested without any; ``RedisConnection``
/// carries its actions out on its event loop. A channel is known by its identity (`ObjectIdentifier`), so a late close
/// of an old channel is never taken for the current one's.
struct RedisConnectionStateMachine<Channel, Request> {
    private enum State {
        case idle
        case connecting
        case ready(Channel, id: ObjectIdentifier)
        case waitingToReconnect
        case closed
    }

    /// What to do with a request.
    enum RequestAction {
        /// Write it on the ready channel.
        case write(Request, Channel)
        /// It waits for a connection; start the waiting timer if `startTimer`, and connect if `connect`.
        case wait(startTimer: Bool, connect: Bool)
        /// Fail it at once.
        case fail(Request, RedisError)
    }

    /// What to do once a connect attempt succeeded.
    enum ConnectedAction {
        /// The connection is in use: log if `restored` (it was reported down), tell the owner (`isReconnect`),
        /// then write the requests that waited, in order.
        case ready(Channel, isReconnect: Bool, restored: Bool, flush: [Request])
        /// The connection is no longer wanted (closed meanwhile): close the channel.
        case closeChannel(Channel)
    }

    /// What to do when a connect attempt failed or the ready channel closed.
    enum DownAction {
        case none
        /// Try again after `delay`; log `warning` (once per outage) when it is set.
        case scheduleReconnect(delay: TimeAmount, warning: String?)
    }

    /// What to do on ``close()``.
    struct CloseAction {
        /// The channel to close, if one was ready.
        var channel: Channel?
        /// Requests that waited for a connection, to fail with ``RedisError/shutdown``.
        var fail: [Request]
    }

    private var state = State.idle
    private var waiting = CircularBuffer<(request: Request, deadline: NIODeadline)>()
    private var timerRunning = false
    private var backoff: Backoff
    private var everConnected = false
    private var reportedDown = false
    /// The last connect attempt failed (cleared by a successful one).
    private var unreachable = false
    private let maxWaiting: Int
    private let failFast: Bool
    /// Why the connection is not usable, for errors of requests that could not wait longer.
    private(set) var lastFailure: String

    /// `endpoint` names the server in the error of a request that times out before the first attempt has an outcome.
    /// With `failFast`, requests fail at once while the last connect attempt failed (see ``connectFailed(endpoint:reason:)``).
    init(backoff: Backoff, maxWaiting: Int, endpoint: String, failFast: Bool = false) {
        self.backoff = backoff
        self.maxWaiting = maxWaiting
        self.failFast = failFast
        self.lastFailure = "no connection to \(endpoint) yet"
    }

    /// The channel in use, when ready.
    var readyChannel: Channel? {
        if case .ready(let channel, _) = state { return channel }
        return nil
    }

    /// Requests waiting for a connection.
    var waitingCount: Int { waiting.count }

    /// Start connecting, if nothing was started yet. Returns whether to connect now.
    mutating func start() -> Bool {
        guard case .idle = state else { return false }
        state = .connecting
        return true
    }

    /// A request wants to go out; it waits until `deadline` at most when there is no connection.
    mutating func request(_ request: Request, deadline: NIODeadline) -> RequestAction {
        var connect = false
        switch state {
        case .ready(let channel, _):
            return .write(request, channel)
        case .closed:
            return .fail(request, .shutdown)
        case .idle:
            state = .connecting
            connect = true
        case .waitingToReconnect where failFast && unreachable:
            return .fail(request, .unavailable(lastFailure))
        case .connecting, .waitingToReconnect:
            break
        }
        guard waiting.count < maxWaiting else {
            return .fail(request, .unavailable("\(lastFailure) (\(waiting.count) commands already waiting)"))
        }
        waiting.append((request, deadline))
        let startTimer = !timerRunning
        timerRunning = true
        return .wait(startTimer: startTimer, connect: connect)
    }

    /// The waiting timer fired: requests past their deadline, to fail with `error`, and whether the timer may stop
    /// (nothing waits any more).
    mutating func waitingTimerFired(now: NIODeadline) -> (expired: [Request], error: RedisError, stopTimer: Bool) {
        var expired: [Request] = []
        if waiting.contains(where: { $0.deadline <= now }) {
            var kept = CircularBuffer<(request: Request, deadline: NIODeadline)>(initialCapacity: waiting.count)
            while let entry = waiting.popFirst() {
                if entry.deadline <= now { expired.append(entry.request) } else { kept.append(entry) }
            }
            waiting = kept
        }
        let stop = waiting.isEmpty
        if stop { timerRunning = false }
        return (expired, .unavailable(lastFailure), stop)
    }

    /// The reconnect delay passed. Returns whether to connect now.
    mutating func reconnectTimerFired() -> Bool {
        guard case .waitingToReconnect = state else { return false }
        state = .connecting
        return true
    }

    /// A connect attempt (with its handshake) succeeded on `channel`, known by `id`.
    mutating func connectSucceeded(_ channel: Channel, id: ObjectIdentifier) -> ConnectedAction {
        guard case .connecting = state else { return .closeChannel(channel) }
        let isReconnect = everConnected
        let restored = reportedDown
        everConnected = true
        reportedDown = false
        unreachable = false
        backoff.reset()
        state = .ready(channel, id: id)
        var flush: [Request] = []
        flush.reserveCapacity(waiting.count)
        while let entry = waiting.popFirst() { flush.append(entry.request) }
        return .ready(channel, isReconnect: isReconnect, restored: restored, flush: flush)
    }

    /// A connect attempt failed; `reason` says why.
    mutating func connectFailed(endpoint: String, reason: String) -> DownAction {
        guard case .connecting = state else { return .none }
        lastFailure = "cannot connect to \(endpoint): \(reason)"
        let warning = reportedDown ? nil : "Redis unreachable; retrying"
        reportedDown = true
        unreachable = true
        state = .waitingToReconnect
        return .scheduleReconnect(delay: backoff.next(), warning: warning)
    }

    /// After a failed connect attempt, with `failFast`: the requests that waited, to fail now with `error` (they were
    /// never written). Empty otherwise.
    mutating func takeWaitingIfUnreachable() -> (requests: [Request], error: RedisError) {
        guard failFast, unreachable else { return ([], .unavailable(lastFailure)) }
        var requests: [Request] = []
        while let entry = waiting.popFirst() { requests.append(entry.request) }
        return (requests, .unavailable(lastFailure))
    }

    /// The channel known by `id` closed (by either side, or broken).
    mutating func channelClosed(id: ObjectIdentifier, endpoint: String) -> DownAction {
        guard case .ready(_, let current) = state, current == id else { return .none }
        lastFailure = "connection to \(endpoint) lost"
        reportedDown = true
        state = .waitingToReconnect
        return .scheduleReconnect(delay: backoff.next(), warning: "Redis connection lost; reconnecting")
    }

    /// Close for good: no reconnect follows, and requests that come later fail with ``RedisError/shutdown``.
    mutating func close() -> CloseAction {
        let channel = readyChannel
        state = .closed
        timerRunning = false
        var fail: [Request] = []
        while let entry = waiting.popFirst() { fail.append(entry.request) }
        return CloseAction(channel: channel, fail: fail)
    }
}
