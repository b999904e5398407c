import NIOCore

/// The rules of one HTTP connection's guard, without sockets or timers: where the connection stands (waiting for a
/// request, reading a head or a body, answering, upgraded, closing), its deadlines, its byte counts and whether it is
/// over a connection limit.
///
/// A driver (`ConnectionGuardHandler` in `PresenceApp`) feeds it what happens on the connection, each time with the
/// current time, and performs the ``Action`` it returns. The machine keeps the connection's one deadline
/// (``timerDeadline``); the driver owns the real timer and reports it with ``timerFired(now:)``. Tests drive time by
/// hand.
///
/// The rules:
/// - A new connection must start its first request within `headerTimeout`; a request head must be complete within
///   `headerTimeout` of its first byte (else ``Rejection/headerTimeout``, 408); a request line longer than
///   `maxRequestLineBytes` is refused (``Rejection/uriTooLong``, 414).
/// - A body must keep arriving at `bodyMinRate` over each `bodyTimeout` window while the server reads it (else
///   ``Action/failSlowBody``: the request fails with 408).
/// - A keep-alive connection with nothing under way is closed after `idleTimeout`.
/// - Once the connection is a WebSocket, or while a response is under way, no deadline of this machine applies.
/// - A refused connection writes its answer, closes its output and is gone ``closeGrace`` later at the latest.
package struct ConnectionGuardStateMachine: Sendable {
    /// Where the connection stands.
    package enum Phase: Equatable, Sendable {
        /// Nothing of the next request yet (`firstEver`: not a single request on this connection so far).
        case awaitingRequest(firstEver: Bool)
        /// The first bytes of a request are in; its head is not complete.
        case head
        /// The head is complete; its body is still coming.
        case body
        /// The request is read whole; its response is under way.
        case responding
        /// The connection became a WebSocket.
        case upgraded
        /// Refused or timed out; closing.
        case closing
    }

    /// A refusal this machine decides on; the driver turns it into an HTTP answer.
    package enum Rejection: Equatable, Sendable {
        /// The request line is longer than `maxRequestLineBytes` (414).
        case uriTooLong
        /// The request head did not complete within `headerTimeout` (408).
        case headerTimeout
        /// The body came too slowly and no route is reading it to answer (408).
        case bodyTimeout
    }

    /// The deadline that passed, as the `phase` label of `http_connections_timed_out_total`.
    package enum Timeout: String, Equatable, Sendable {
        /// A new connection sent nothing within `headerTimeout`.
        case noRequest = "no_request"
        /// A keep-alive connection sat idle for `idleTimeout`.
        case idle
        /// A request head did not complete within `headerTimeout`.
        case header
        /// A body came slower than `bodyMinRate`.
        case body
    }

    /// What the driver does after an event.
    package enum Action: Equatable, Sendable {
        /// Nothing.
        case none
        /// Pass the bytes, the event or the close on to the next handler.
        case forward
        /// Pass the bytes on, and arm the timer for `deadline` (replacing any armed one).
        case forwardAndScheduleTimer(at: NIODeadline)
        /// Drop the bytes: the connection is closing.
        case drop
        /// Arm the timer for `deadline`, replacing any armed one.
        case scheduleTimer(at: NIODeadline)
        /// Cancel the armed timer.
        case cancelTimer
        /// Refuse the request: the driver builds the answer and reports it with ``reject(responseDue:now:)``.
        case reject(Rejection)
        /// Write the refusal's answer on the raw socket, report the write with ``rejectionWritten(succeeded:)``, and
        /// arm the timer for `closeAt` (when the connection closes whatever the client does).
        case writeRejection(closeAt: NIODeadline)
        /// The body is too slow: fail the request under way (its route answers 408) and call ``closeSoon(now:)``;
        /// with no route reading it, ``reject(_:)`` it with ``Rejection/bodyTimeout`` instead.
        case failSlowBody
        /// Lingering after a refusal: close the output and tell the HTTP handlers input ended; input is drained
        /// until the client closes or the timer fires.
        case linger
        /// Hold the close a later handler asked for until the lingering ends.
        case deferClose
        /// Close the connection now (cancelling the timer), after telling the HTTP handlers input ended.
        /// `timedOut`: the deadline that passed, if that is why.
        case close(timedOut: Timeout?)
    }

    /// How long a refused or failed connection may take to go away.
    package static let closeGrace = TimeAmount.seconds(1)

    private let headerTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private let bodyTimeout: TimeAmount
    /// Body bytes each `bodyTimeout` window must bring while the server reads.
    private let bodyBytesPerWindow: Int
    private let maxRequestLineBytes: Int

    /// Where the connection stands.
    package private(set) var phase = Phase.awaitingRequest(firstEver: true)
    /// When the armed timer fires; `nil` when none is armed.
    package private(set) var timerDeadline: NIODeadline?
    /// The current request's line (method, target, version) is complete.
    package private(set) var requestLineComplete = false
    /// The request line ended with a bare LF instead of CRLF.
    package private(set) var requestLineBareLF = false
    /// The current request's first byte.
    package private(set) var firstByte: UInt8?
    /// Set when the connection is over a limit: its first request is refused (503, or 4004 on a WebSocket).
    package private(set) var refusal: ConnectionRegistry.Refusal?
    /// After a refusal: output closed, input drained until the client closes or ``closeGrace`` passes.
    package private(set) var lingering = false

    private var peerIsTrustedProxy = false
    private var attributed = false
    private var headBytes = 0
    private var lastHeadByte: UInt8?
    private var bodyBytesThisWindow = 0
    private var readPending = false

    /// A machine for a connection held to `settings`.
    package init(settings: ConnectionSettings) {
        headerTimeout = TimeAmount(settings.headerTimeout)
        idleTimeout = TimeAmount(settings.idleTimeout)
        bodyTimeout = TimeAmount(settings.bodyTimeout)
        bodyBytesPerWindow = Int(Double(settings.bodyMinRate) * Double(settings.bodyTimeout.components.seconds))
        maxRequestLineBytes = settings.maxRequestLineBytes
    }

    // MARK: - The connection

    /// The connection was accepted and counted: `refusal` when it is over a limit already; `peerIsTrustedProxy` when
    /// its peer is a trusted proxy, so its first request head names the client to count it under. Its first request
    /// must start within `headerTimeout`.
    package mutating func opened(peerIsTrustedProxy: Bool, refusal: ConnectionRegistry.Refusal?, now: NIODeadline) -> Action {
        self.peerIsTrustedProxy = peerIsTrustedProxy
        self.refusal = refusal
        return arm(now + headerTimeout)
    }

    /// The connection closed (or its guard left the pipeline).
    package mutating func closed() -> Action {
        timerDeadline = nil
        return .cancelTimer
    }

    /// The pipeline asked for more input.
    package mutating func readRequested() {
        readPending = true
    }

    /// Bytes arrived. The first bytes of a request start its head and its `headerTimeout`; head bytes are counted
    /// against `maxRequestLineBytes` until the request line ends; body bytes count towards the body's rate.
    package mutating func received(_ bytes: ByteBufferView, now: NIODeadline) -> Action {
        readPending = false
        switch phase {
        case .awaitingRequest:
            phase = .head
            headBytes = 0
            requestLineComplete = false
            requestLineBareLF = false
            firstByte = bytes.first
            let deadline = now + headerTimeout
            timerDeadline = deadline
            if let rejection = accountHead(bytes) { return .reject(rejection) }
            return .forwardAndScheduleTimer(at: deadline)
        case .head:
            if let rejection = accountHead(bytes) { return .reject(rejection) }
            return .forward
        case .body:
            bodyBytesThisWindow += bytes.count
            return .forward
        case .responding, .upgraded:
            return .forward
        case .closing:
            return .drop
        }
    }

    // MARK: - Limits

    /// Whether the next request head decides where this connection is counted: its peer is a trusted proxy, it is not
    /// counted under a client yet, and it is not refused already. Then the driver counts it under the client the head
    /// names and reports the result with ``attributed(refusal:)``.
    package var needsAttribution: Bool {
        refusal == nil && peerIsTrustedProxy && !attributed
    }

    /// The connection was counted under the client its proxy named; `refusal` when that client is over its limit.
    package mutating func attributed(refusal: ConnectionRegistry.Refusal?) {
        attributed = true
        self.refusal = refusal
    }

    // MARK: - Requests and responses

    /// A request head is complete: its body must now come at `bodyMinRate`.
    package mutating func headReceived(now: NIODeadline) -> Action {
        requestLineComplete = true
        guard phase != .closing, phase != .upgraded else { return .none }
        phase = .body
        bodyBytesThisWindow = 0
        return arm(now + bodyTimeout)
    }

    /// The request's last part arrived; `responseFinished` when its response went out already.
    package mutating func requestEnded(responseFinished: Bool, now: NIODeadline) -> Action {
        guard phase == .body || phase == .head else { return .none }
        if responseFinished { return awaitNextRequest(now: now) }
        phase = .responding
        timerDeadline = nil
        return .cancelTimer
    }

    /// A response ended; the connection waits for the next request once every request read so far is answered.
    package mutating func responseEnded(allAnswered: Bool, now: NIODeadline) -> Action {
        guard phase == .responding, allAnswered else { return .none }
        return awaitNextRequest(now: now)
    }

    /// The connection became a WebSocket: its own liveness checks take over.
    package mutating func upgraded() -> Action {
        phase = .upgraded
        timerDeadline = nil
        return .cancelTimer
    }

    // MARK: - Refusing and closing

    /// The request is refused (by this machine or by the HTTP handlers). With `responseDue` (a response is owed or
    /// being written) nothing may be written, so the connection just closes; otherwise the answer is written and the
    /// connection closes ``closeGrace`` later at the latest. Ignored once closing or upgraded.
    package mutating func reject(responseDue: Bool, now: NIODeadline) -> Action {
        guard phase != .closing, phase != .upgraded else { return .none }
        phase = .closing
        timerDeadline = nil
        if responseDue { return finish() }
        let deadline = now + Self.closeGrace
        timerDeadline = deadline
        return .writeRejection(closeAt: deadline)
    }

    /// The refusal's answer was written (or failed to be). Written while still closing: linger, so the answer is not
    /// lost to a reset while the client is still sending; otherwise close now.
    package mutating func rejectionWritten(succeeded: Bool) -> Action {
        guard succeeded, phase == .closing else { return finish() }
        lingering = true
        return .linger
    }

    /// The connection must close within ``closeGrace`` whatever happens to the response under way.
    package mutating func closeSoon(now: NIODeadline) -> Action {
        phase = .closing
        return arm(now + Self.closeGrace)
    }

    /// A later handler asked to close the connection (`all`: both directions). Held while lingering.
    package mutating func closeRequested(all: Bool) -> Action {
        lingering && all ? .deferClose : .forward
    }

    /// The client closed its side. After a refusal that ends the connection.
    package mutating func inputClosed() -> Action {
        phase == .closing ? finish() : .forward
    }

    /// The server is stopping. A connection with no request under way, or only part of a head, has nothing to
    /// finish and closes (``Action/close(timedOut:)``); one with a request under way carries on (``Action/forward``).
    /// The driver passes the event on either way.
    package mutating func quiesce() -> Action {
        switch phase {
        case .awaitingRequest, .head: return finish()
        default: return .forward
        }
    }

    /// The armed timer fired. A fire with no timer armed, or before its deadline, is stale and ignored.
    package mutating func timerFired(now: NIODeadline) -> Action {
        guard let deadline = timerDeadline, now >= deadline else { return .none }
        timerDeadline = nil
        switch phase {
        case .awaitingRequest(let firstEver):
            return finish(timedOut: firstEver ? .noRequest : .idle)
        case .head:
            return .reject(.headerTimeout)
        case .body:
            if readPending && bodyBytesThisWindow < bodyBytesPerWindow { return .failSlowBody }
            bodyBytesThisWindow = 0
            return arm(now + bodyTimeout)
        case .closing:
            // The grace after a refusal or a failed request is over.
            return finish()
        case .responding, .upgraded:
            return .none
        }
    }

    // MARK: - Internals

    /// Counts head bytes; the rejection when the request line is past its limit.
    private mutating func accountHead(_ bytes: ByteBufferView) -> Rejection? {
        if !requestLineComplete {
            if let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) {
                requestLineComplete = true
                requestLineBareLF = newline == bytes.startIndex
                    ? lastHeadByte != UInt8(ascii: "\r")
                    : bytes[newline - 1] != UInt8(ascii: "\r")
                if headBytes + (newline - bytes.startIndex) > maxRequestLineBytes { return .uriTooLong }
            } else if headBytes + bytes.count > maxRequestLineBytes {
                return .uriTooLong
            }
        }
        headBytes += bytes.count
        lastHeadByte = bytes.last
        return nil
    }

    private mutating func awaitNextRequest(now: NIODeadline) -> Action {
        phase = .awaitingRequest(firstEver: false)
        return arm(now + idleTimeout)
    }

    private mutating func arm(_ deadline: NIODeadline) -> Action {
        timerDeadline = deadline
        return .scheduleTimer(at: deadline)
    }

    private mutating func finish(timedOut: Timeout? = nil) -> Action {
        phase = .closing
        timerDeadline = nil
        lingering = false
        return .close(timedOut: timedOut)
    }
}
