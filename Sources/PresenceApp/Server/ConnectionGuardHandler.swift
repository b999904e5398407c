import PresenceRealtime
import PresenceHTTP
import Metrics
import NIOCore
import NIOHTTP1

/// The first handler of every connection, on raw bytes: it holds the connection's deadlines and writes the
/// refusals that happen before a route sees a request.
///
/// - A new connection must start its first request within `HEADER_TIMEOUT`; a request head must be complete within
///   `HEADER_TIMEOUT` of its first byte (else 408); a request line longer than 8 KiB gets 414.
/// - A body must keep arriving at `BODY_MIN_RATE` over each `BODY_TIMEOUT` window while the server reads it (else the
///   request fails with 408 through the route's error handling).
/// - A keep-alive connection with nothing under way is closed after `IDLE_TIMEOUT`.
/// - Once the connection is a WebSocket, the Pusher protocol's own liveness checks take over.
///
/// It learns where the request stands from ``HTTPRequestObserver``, which sits after the HTTP decoder. Every
/// callback runs on the channel's event loop.
final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    enum Phase: Equatable {
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

    private let settings: ConnectionSettings
    private let registry: ConnectionRegistry
    private var context: ChannelHandlerContext?
    private(set) var phase = Phase.awaitingRequest(firstEver: true)
    private var timer: Scheduled<Void>?
    private var registered = false
    private var peer: String?
    private var peerIsTrustedProxy = false
    /// Addresses this connection is counted under in the registry.
    private var counted: [String] = []
    private var attributed = false
    /// Set when the connection is over a limit: its first request is refused (503, or 4004 on a WebSocket).
    private var refusal: ConnectionRegistry.Refusal?
    private(set) var requestLineComplete = false
    /// The request line ended with a bare LF instead of CRLF.
    private(set) var requestLineBareLF = false
    private(set) var firstByte: UInt8?
    private var headBytes = 0
    private var lastHeadByte: UInt8?
    private var bodyBytesThisWindow = 0
    private var readPending = false
    /// After a refusal: output closed, input drained until the client closes or a second passes.
    private var lingering = false
    /// Closes asked for by later handlers while lingering; done when the lingering ends.
    private var deferredCloses: [EventLoopPromise<Void>?] = []
    /// Knows whether a response is under way, and relays input-closed to the HTTP handlers; `nil` once upgraded.
    weak var observer: HTTPRequestObserver?

    init(settings: ConnectionSettings, registry: ConnectionRegistry) {
        self.settings = settings
        self.registry = registry
    }

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
        readPending = false
        switch phase {
        case .awaitingRequest:
            let buffer = unwrapInboundIn(data)
            phase = .head
            headBytes = 0
            requestLineComplete = false
            requestLineBareLF = false
            firstByte = buffer.readableBytesView.first
            arm(settings.headerTimeout)
            guard accountHead(buffer) else { return }
        case .head:
            guard accountHead(unwrapInboundIn(data)) else { return }
        case .body:
            bodyBytesThisWindow += unwrapInboundIn(data).readableBytes
        case .responding, .upgraded:
            break
        case .closing:
            return
        }
        context.fireChannelRead(data)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if lingering && mode == .all {
            deferredCloses.append(promise)
            return
        }
        context.close(mode: mode, promise: promise)
    }

    func read(context: ChannelHandlerContext) {
        readPending = true
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if phase == .closing, let event = event as? ChannelEvent, event == .inputClosed {
            // The client closed its side after a refusal: done.
            finish(context: context)
            return
        }
        if event is ChannelShouldQuiesceEvent {
            // The server is stopping: a connection with no request under way has nothing to finish.
            switch phase {
            case .awaitingRequest, .head: finish(context: context)
            default: break
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: - From the observer

    /// A complete request head arrived. Returns the refusal when this connection is over a limit: at accept, or now
    /// that a trusted proxy's request names the client.
    func admit(forwardedFor: String?) -> ConnectionRegistry.Refusal? {
        if refusal == nil, peerIsTrustedProxy, !attributed {
            attributed = true
            let (address, refused) = registry.attribute(peer: peer, forwardedFor: forwardedFor)
            counted.append(address)
            refusal = refused
        }
        return refusal
    }

    func headReceived() {
        requestLineComplete = true
        guard phase != .closing, phase != .upgraded else { return }
        phase = .body
        bodyBytesThisWindow = 0
        arm(settings.bodyTimeout)
    }

    /// The request's last part arrived; `responseFinished` when its response went out already.
    func requestEnded(responseFinished: Bool) {
        guard phase == .body || phase == .head else { return }
        if responseFinished {
            awaitNextRequest()
        } else {
            phase = .responding
            cancelTimer()
        }
    }

    /// A response ended; the connection waits for the next request once every request read so far is answered.
    func responseEnded(allAnswered: Bool) {
        if phase == .responding && allAnswered { awaitNextRequest() }
    }

    func upgraded() {
        phase = .upgraded
        cancelTimer()
        observer = nil
    }

    /// Answers `rejection` on the raw socket (when no response is under way) and closes the connection: output
    /// first, then input once the client has closed its side or after a second, so the answer is not lost to a reset
    /// while the client is still sending.
    func reject(_ rejection: ConnectionRejection) {
        guard let context, phase != .closing, phase != .upgraded else { return }
        phase = .closing
        cancelTimer()
        Counter(label: "http_requests_refused_total", dimensions: [("status", String(rejection.status.code))]).increment()
        guard observer?.responseDue != true else {
            finish(context: context)
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(rejection.bytes(allocator: context.channel.allocator))), promise: written)
        written.futureResult.assumeIsolated().whenComplete { result in
            guard case .success = result, self.phase == .closing else { return self.finish(context: context) }
            // Linger: the answer is out and the output closed; input is read and dropped until the client closes
            // its side (then the socket closes cleanly, no reset) or the timer below fires. The HTTP handlers end
            // now; a close they ask for waits for the lingering to end.
            self.lingering = true
            context.close(mode: .output, promise: nil)
            self.observer?.closeInput()
        }
        // Whatever the client does meanwhile, the connection is gone a second from now.
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) { self.finish(context: context) }
    }

    /// Closes the connection within a second whatever happens to the response under way.
    func closeSoon() {
        guard let context else { return }
        phase = .closing
        cancelTimer()
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) { self.finish(context: context) }
    }

    // MARK: - Internals

    private func register(context: ChannelHandlerContext) {
        guard !registered else { return }
        registered = true
        peer = context.channel.remoteAddress?.ipAddress
        peerIsTrustedProxy = peer.map { ClientAddress.isTrusted($0, registry.trustedProxies) } ?? false
        let (address, refusal) = registry.opened(context.channel, peer: peer)
        if let address { counted.append(address) }
        self.refusal = refusal
        arm(settings.headerTimeout)
    }

    private func unregister(context: ChannelHandlerContext) {
        cancelTimer()
        guard registered else { return }
        registered = false
        registry.closed(context.channel, addresses: counted)
        counted = []
    }

    /// Counts head bytes; refuses a request line past the limit. `false` when the request was refused.
    private func accountHead(_ buffer: ByteBuffer) -> Bool {
        if !requestLineComplete {
            let view = buffer.readableBytesView
            if let newline = view.firstIndex(of: UInt8(ascii: "\n")) {
                requestLineComplete = true
                requestLineBareLF = newline == view.startIndex ? lastHeadByte != UInt8(ascii: "\r") : view[newline - 1] != UInt8(ascii: "\r")
                if headBytes + (newline - view.startIndex) > settings.maxRequestLineBytes {
                    reject(ConnectionRejection(status: .uriTooLong, message: "URI too long"))
                    return false
                }
            } else if headBytes + view.count > settings.maxRequestLineBytes {
                reject(ConnectionRejection(status: .uriTooLong, message: "URI too long"))
                return false
            }
        }
        headBytes += buffer.readableBytes
        lastHeadByte = buffer.readableBytesView.last
        return true
    }

    private func awaitNextRequest() {
        phase = .awaitingRequest(firstEver: false)
        arm(settings.idleTimeout)
    }

    private func arm(_ delay: Duration) {
        cancelTimer()
        guard let context else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(delay)) { self.timerFired() }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
    }

    private func timerFired() {
        guard let context else { return }
        timer = nil
        switch phase {
        case .awaitingRequest(let firstEver):
            Counter(label: "http_connections_timed_out_total", dimensions: [("phase", firstEver ? "no_request" : "idle")]).increment()
            finish(context: context)
        case .head:
            Counter(label: "http_connections_timed_out_total", dimensions: [("phase", "header")]).increment()
            reject(ConnectionRejection(status: .requestTimeout, message: "Request header timeout"))
        case .body:
            let window = settings.bodyTimeout
            let needed = Int(Double(settings.bodyMinRate) * Double(window.components.seconds))
            if readPending && bodyBytesThisWindow < needed {
                Counter(label: "http_connections_timed_out_total", dimensions: [("phase", "body")]).increment()
                if let observer {
                    observer.failRequest(RequestBodyTimeout())
                    closeSoon()
                } else {
                    reject(ConnectionRejection(status: .requestTimeout, message: "Request body timeout"))
                }
            } else {
                bodyBytesThisWindow = 0
                arm(window)
            }
        case .responding, .upgraded, .closing:
            break
        }
    }

    /// Closes the connection now. The HTTP handlers are told first that input ended, so they finish quietly (the
    /// upgrade handler otherwise reports a failed negotiation as an error).
    private func finish(context: ChannelHandlerContext) {
        cancelTimer()
        phase = .closing
        lingering = false
        observer?.closeInput()
        let deferred = deferredCloses
        deferredCloses = []
        context.close(promise: nil)
        for promise in deferred { context.channel.closeFuture.cascade(to: promise) }
    }
}
