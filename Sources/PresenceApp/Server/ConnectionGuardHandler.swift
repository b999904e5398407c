import PresenceRealtime
import PresenceHTTP
import Metrics
import NIOCore
import NIOHTTP1

/// The first handler of every connection, on raw bytes: it holds the connection's deadlines and writes the
/// refusals that happen before a route sees a request.
///
/// The rules (deadlines, sizes, limits) are ``ConnectionGuardStateMachine``'s; this handler feeds it what happens on
/// the connection, performs what it answers and owns the real timer. See the machine for the rules.
///
/// It learns where the request stands from ``HTTPRequestObserver``, which sits after the HTTP decoder. Every
/// callback runs on the channel's event loop.
final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let registry: ConnectionRegistry
    private var machine: ConnectionGuardStateMachine
    private var context: ChannelHandlerContext?
    private var timer: Scheduled<Void>?
    private var registered = false
    private var peer: String?
    /// Addresses this connection is counted under in the registry.
    private var counted: [String] = []
    /// Closes asked for by later handlers while lingering; done when the lingering ends.
    private var deferredCloses: [EventLoopPromise<Void>?] = []
    /// Knows whether a response is under way, and relays input-closed to the HTTP handlers; `nil` once upgraded.
    weak var observer: HTTPRequestObserver?

    init(settings: ConnectionSettings, registry: ConnectionRegistry) {
        self.registry = registry
        self.machine = ConnectionGuardStateMachine(settings: settings)
    }

    /// Where the connection stands.
    var phase: ConnectionGuardStateMachine.Phase { machine.phase }
    /// The current request's line is complete (tells a long URL from long headers).
    var requestLineComplete: Bool { machine.requestLineComplete }
    /// The request line ended with a bare LF instead of CRLF.
    var requestLineBareLF: Bool { machine.requestLineBareLF }
    /// The current request's first byte.
    var firstByte: UInt8? { machine.firstByte }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { register(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        unregister(context: context)
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        register(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        unregister(context: context)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch machine.received(unwrapInboundIn(data).readableBytesView, now: .now()) {
        case .forward:
            context.fireChannelRead(data)
        case .forwardAndScheduleTimer(let deadline):
            schedule(at: deadline)
            context.fireChannelRead(data)
        case let action:
            perform(action)
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if machine.closeRequested(all: mode == .all) == .deferClose {
            deferredCloses.append(promise)
            return
        }
        context.close(mode: mode, promise: promise)
    }

    func read(context: ChannelHandlerContext) {
        machine.readRequested()
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, machine.inputClosed() != .forward {
            // The client closed its side after a refusal: done.
            finish()
            return
        }
        if event is ChannelShouldQuiesceEvent, machine.quiesce() != .forward {
            // The server is stopping: a connection with no request under way has nothing to finish.
            finish()
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: - From the observer

    /// A complete request head arrived. Returns the refusal when this connection is over a limit: at accept, or now
    /// that a trusted proxy's request names the client.
    func admit(forwardedFor: String?) -> ConnectionRegistry.Refusal? {
        if machine.needsAttribution {
            let (address, refused) = registry.attribute(peer: peer, forwardedFor: forwardedFor)
            counted.append(address)
            machine.attributed(refusal: refused)
        }
        return machine.refusal
    }

    func headReceived() {
        perform(machine.headReceived(now: .now()))
    }

    /// The request's last part arrived; `responseFinished` when its response went out already.
    func requestEnded(responseFinished: Bool) {
        perform(machine.requestEnded(responseFinished: responseFinished, now: .now()))
    }

    /// A response ended; the connection waits for the next request once every request read so far is answered.
    func responseEnded(allAnswered: Bool) {
        perform(machine.responseEnded(allAnswered: allAnswered, now: .now()))
    }

    func upgraded() {
        perform(machine.upgraded())
        observer = nil
    }

    /// Answers `rejection` on the raw socket (when no response is under way) and closes the connection: output
    /// first, then input once the client has closed its side or after a second, so the answer is not lost to a reset
    /// while the client is still sending.
    func reject(_ rejection: ConnectionRejection) {
        guard let context else { return }
        let action = machine.reject(responseDue: observer?.responseDue == true, now: .now())
        guard action != .none else { return }
        Counter(label: "http_requests_refused_total", dimensions: [("status", String(rejection.status.code))]).increment()
        guard case .writeRejection(let closeAt) = action else { return perform(action) }
        // Whatever the client does meanwhile, the connection is gone a second from now.
        schedule(at: closeAt)
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(rejection.bytes(allocator: context.channel.allocator))), promise: written)
        written.futureResult.assumeIsolated().whenComplete { result in
            let succeeded = if case .success = result { true } else { false }
            self.perform(self.machine.rejectionWritten(succeeded: succeeded))
        }
    }

    /// Closes the connection within a second whatever happens to the response under way.
    func closeSoon() {
        guard context != nil else { return }
        perform(machine.closeSoon(now: .now()))
    }

    // MARK: - Internals

    /// Does what the machine asked for.
    private func perform(_ action: ConnectionGuardStateMachine.Action) {
        switch action {
        case .none, .forward, .drop, .deferClose:
            break
        case .forwardAndScheduleTimer(let deadline), .scheduleTimer(let deadline):
            schedule(at: deadline)
        case .cancelTimer:
            cancelTimer()
        case .reject(let reason):
            switch reason {
            case .uriTooLong:
                reject(ConnectionRejection(status: .uriTooLong, message: "URI too long"))
            case .headerTimeout:
                countTimeout(.header)
                reject(ConnectionRejection(status: .requestTimeout, message: "Request header timeout"))
            case .bodyTimeout:
                reject(ConnectionRejection(status: .requestTimeout, message: "Request body timeout"))
            }
        case .writeRejection:
            // Only `reject(_:)` gets this, and writes the answer itself.
            break
        case .failSlowBody:
            countTimeout(.body)
            if let observer {
                observer.failRequest(RequestBodyTimeout())
                closeSoon()
            } else {
                perform(.reject(.bodyTimeout))
            }
        case .linger:
            // The answer is out: close the output and read and drop input until the client closes its side (then the
            // socket closes cleanly, no reset) or the timer fires. The HTTP handlers end now; a close they ask for
            // waits for the lingering to end.
            context?.close(mode: .output, promise: nil)
            observer?.closeInput()
        case .close(let timedOut):
            if let timedOut { countTimeout(timedOut) }
            finish()
        }
    }

    private func countTimeout(_ timeout: ConnectionGuardStateMachine.Timeout) {
        Counter(label: "http_connections_timed_out_total", dimensions: [("phase", timeout.rawValue)]).increment()
    }

    private func register(context: ChannelHandlerContext) {
        guard !registered else { return }
        registered = true
        peer = context.channel.remoteAddress?.ipAddress
        let peerIsTrustedProxy = peer.map { ClientAddress.isTrusted($0, registry.trustedProxies) } ?? false
        let (address, refusal) = registry.opened(context.channel, peer: peer)
        if let address { counted.append(address) }
        perform(machine.opened(peerIsTrustedProxy: peerIsTrustedProxy, refusal: refusal, now: .now()))
    }

    private func unregister(context: ChannelHandlerContext) {
        perform(machine.closed())
        guard registered else { return }
        registered = false
        registry.closed(context.channel, addresses: counted)
        counted = []
    }

    private func schedule(at deadline: NIODeadline) {
        cancelTimer()
        guard let context else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { self.timerFired() }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
    }

    private func timerFired() {
        guard context != nil else { return }
        timer = nil
        perform(machine.timerFired(now: .now()))
    }

    /// Closes the connection now. The HTTP handlers are told first that input ended, so they finish quietly (the
    /// upgrade handler otherwise reports a failed negotiation as an error).
    private func finish() {
        cancelTimer()
        guard let context else { return }
        observer?.closeInput()
        let deferred = deferredCloses
        deferredCloses = []
        context.close(promise: nil)
        for promise in deferred { context.channel.closeFuture.cascade(to: promise) }
    }
}
