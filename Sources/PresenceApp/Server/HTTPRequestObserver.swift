import PresenceRealtime
import PresenceHTTP
import Metrics
import NIOCore
import NIOHTTP1

/// Sits right after the HTTP decoder and tells ``ConnectionGuardHandler`` where each request stands (head, end,
/// response end, upgrade). It also answers what the decoder refuses: every malformed request gets a 4xx (or 505)
/// in JSON and the connection is closed, instead of silence or a 500.
///
/// It removes itself when the connection becomes a WebSocket.
final class HTTPRequestObserver: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Set on a WebSocket upgrade request of a connection over its limits, so the WebSocket route refuses it with
    /// Pusher's 4004. Any value a client sends itself is removed first.
    static let overQuotaHeader = "X-Presence-Over-Quota"

    private let guardHandler: ConnectionGuardHandler
    private var context: ChannelHandlerContext?
    /// A request head arrived and its end has not.
    private var requestOpen = false
    /// Requests whose response has not ended.
    private var unanswered = 0
    private var responseOpen = false
    private var closeAfterResponse = false
    private var upgraded = false
    private var refused = false

    init(guardHandler: ConnectionGuardHandler) {
        self.guardHandler = guardHandler
    }

    /// Whether a response is owed or being written: then nothing else may be written on the connection.
    var responseDue: Bool { unanswered > 0 || responseOpen }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        guardHandler.observer = self
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if upgraded {
            context.fireChannelRead(data)
            return
        }
        guard !refused else { return }
        switch unwrapInboundIn(data) {
        case .head(var head):
            head.headers.remove(name: Self.overQuotaHeader)
            if let refusal = guardHandler.admit(forwardedFor: head.headers.first(name: "X-Forwarded-For")) {
                if Self.isWebSocketUpgrade(head) {
                    head.headers.add(name: Self.overQuotaHeader, value: refusal.rawValue)
                } else {
                    refused = true
                    ConnectionRegistry.countRefusal(refusal, kind: "http")
                    guardHandler.reject(ConnectionRejection(
                        status: .serviceUnavailable, message: "Too many connections",
                        headers: [("Retry-After", "5")]
                    ))
                    return
                }
            }
            requestOpen = true
            unanswered += 1
            guardHandler.headReceived()
            context.fireChannelRead(wrapInboundOut(.head(head)))
        case .body:
            context.fireChannelRead(data)
        case .end:
            requestOpen = false
            guardHandler.requestEnded(responseFinished: unanswered == 0)
            context.fireChannelRead(data)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            responseOpen = true
            context.write(data, promise: promise)
            if head.status == .switchingProtocols {
                // From here on the bytes are WebSocket frames: pass them through untouched, and leave the pipeline
                // once this response is flushed (removing the handler inside `write` would lose that flush).
                upgraded = true
                guardHandler.upgraded()
            }
        case .body:
            context.write(data, promise: promise)
        case .end:
            responseOpen = false
            unanswered = max(0, unanswered - 1)
            if closeAfterResponse {
                let written = context.eventLoop.makePromise(of: Void.self)
                written.futureResult.cascade(to: promise)
                written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                context.write(data, promise: written)
            } else {
                context.write(data, promise: promise)
            }
            guardHandler.responseEnded(allAnswered: unanswered == 0)
        }
    }

    func flush(context: ChannelHandlerContext) {
        context.flush()
        if upgraded && self.context != nil {
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !upgraded, let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        Counter(label: "http_malformed_requests_total").increment()
        if requestOpen {
            // The body is broken: the route reading it gets the error and answers 400, then the connection closes.
            failRequest(parserError)
        } else if unanswered == 0 {
            // Nothing is owed on this connection: answer here.
            guardHandler.reject(ConnectionRejection.forParserError(
                parserError, requestLineComplete: guardHandler.requestLineComplete, firstByte: guardHandler.firstByte,
                bareLineFeed: guardHandler.requestLineBareLF
            ))
        } else {
            // A response is still coming for an earlier request: send it, then close.
            closeAfterResponse = true
            guardHandler.closeSoon()
        }
    }

    /// Fails the request under way with `error` (its route answers, through the JSON error middleware) and closes
    /// the connection after that answer. When the answer went out already, closes at once.
    func failRequest(_ error: any Error) {
        guard let context else { return }
        if unanswered > 0 && !responseOpen {
            closeAfterResponse = true
            guardHandler.closeSoon()
            context.fireErrorCaught(error)
        } else {
            closeInput()
            context.close(promise: nil)
        }
    }

    /// Tells the handlers after this one that no more input will come, so they finish without an error.
    func closeInput() {
        context?.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
    }

    private static func isWebSocketUpgrade(_ head: HTTPRequestHead) -> Bool {
        head.headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
    }
}
