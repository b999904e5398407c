import PresenceRealtime
import PresenceHTTP
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket

/// Every connection the server accepts: HTTP/1 served by the router through Hummingbird, and WebSocket upgrades that
/// become event-loop handlers (``PusherChannelHandler``) with no task of their own, all behind this service's
/// connection guards: ``ConnectionGuardHandler`` first in the pipeline, on raw bytes, and ``HTTPRequestObserver`` right
/// after the HTTP decoder.
///
/// An upgrade request runs through the router first (middleware included: origins, logging); a `200` from its route
/// accepts it, anything else answers `400` and closes.
struct GuardedHTTPChannel: ServerChildChannel, HTTPChannelHandler {
    /// What the first request of a connection turned it into.
    enum Negotiated: Sendable {
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        case refusedUpgrade(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        /// A WebSocket, served by its handlers on the event loop from here on.
        case webSocket
    }

    struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<Negotiated>
        let channel: any Channel
    }

    /// The WebSocket side: which upgrades to accept, and the handlers an accepted one gets.
    struct WebSocketUpgrade: Sendable {
        /// The largest frame a client may send.
        var maxFrameSize: Int
        /// Whether the upgrade request may become a WebSocket (async: it runs the router).
        var accept: @Sendable (HTTPRequest, any Channel, Logger) async -> Bool
        /// Adds the WebSocket handlers after NIO's frame codec, on the event loop.
        var install: @Sendable (HTTPRequest, any Channel) throws -> Void
    }

    let responder: HTTPChannelHandler.Responder
    let http1: HTTP1Channel.Configuration
    let webSocket: WebSocketUpgrade
    let settings: ConnectionSettings
    let registry: ConnectionRegistry

    init(
        responder: @escaping HTTPChannelHandler.Responder, http1: HTTP1Channel.Configuration, webSocket: WebSocketUpgrade,
        settings: ConnectionSettings, registry: ConnectionRegistry
    ) {
        self.responder = Self.redirectingLateUpgrades(responder)
        self.http1 = http1
        self.webSocket = webSocket
        self.settings = settings
        self.registry = registry
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let attempted = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
            let webSocket = self.webSocket
            let upgrader = NIOTypedWebSocketServerUpgrader<Negotiated>(
                maxFrameSize: webSocket.maxFrameSize,
                shouldUpgrade: { (channel: any Channel, head: HTTPRequestHead) -> EventLoopFuture<HTTPHeaders?> in
                    attempted.value = true
                    guard let request = try? HTTPRequest(head, secure: false, splitCookie: false) else {
                        return channel.eventLoop.makeSucceededFuture(nil)
                    }
                    let promise = channel.eventLoop.makePromise(of: HTTPHeaders?.self)
                    promise.completeWithTask { await webSocket.accept(request, channel, logger) ? HTTPHeaders() : nil }
                    return promise.futureResult
                },
                upgradePipelineHandler: { (channel: any Channel, head: HTTPRequestHead) -> EventLoopFuture<Negotiated> in
                    channel.eventLoop.makeCompletedFuture {
                        try webSocket.install(try HTTPRequest(head, secure: false, splitCookie: false), channel)
                        return Negotiated.webSocket
                    }
                }
            )
            let http1 = self.http1
            let upgrade = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let operations = channel.pipeline.syncOperations
                        try operations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try operations.addHandlers(http1.additionalChannelHandlers())
                        try operations.addHandler(HTTPConnectionStateHandler(idleTimeout: http1.idleTimeout.map { .nanoseconds($0.nanoseconds) }, logger: logger))
                        let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true)
                        )
                        return attempted.value ? .refusedUpgrade(asyncChannel) : .http(asyncChannel)
                    }
                }
            )
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration<Negotiated>(upgradeConfiguration: upgrade)
            configuration.enablePipelining = false  // HTTP is pipelined by NIOAsyncChannel
            configuration.enableErrorHandling = false  // handled by Hummingbird and HTTPRequestObserver
            configuration.enableResponseHeaderValidation = false  // Swift HTTP Types validate already
            configuration.decoderConfiguration.maxHeaderFieldSize = http1.httpDecoder.maxHeaderFieldSize
            configuration.decoderConfiguration.maxHeaderListSize = http1.httpDecoder.maxHeaderListSize
            configuration.decoderConfiguration.maxHeaderFieldCount = http1.httpDecoder.maxHeaderFieldCount
            let operations = channel.pipeline.syncOperations
            let negotiated = try operations.configureUpgradableHTTPServerPipeline(configuration: configuration)
            let guardHandler = ConnectionGuardHandler(settings: settings, registry: registry)
            try operations.addHandler(guardHandler, position: .first)
            let decoder = try operations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try operations.addHandler(HTTPRequestObserver(guardHandler: guardHandler), position: .after(decoder))
            return Value(negotiated: negotiated, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.negotiated.get() {
            case .http(let asyncChannel):
                await handleHTTP(asyncChannel: asyncChannel, logger: logger)
            case .refusedUpgrade(let asyncChannel):
                await refuseUpgrade(asyncChannel, logger: logger)
            case .webSocket:
                return
            }
        } catch let error as ChannelError where error == .inputClosed {
            logger.trace("Connection closed before its first request")
        } catch {
            logger.debug("Connection negotiation failed", metadata: ["error": "\(error)"])
        }
    }

    /// An upgrade the router did not accept: `400`, then close.
    private func refuseUpgrade(_ asyncChannel: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, logger: Logger) async {
        do {
            try await asyncChannel.executeThenClose { _, outbound in
                let head = HTTPResponse(status: .badRequest, headerFields: [.connection: "close", .contentLength: "0"])
                try await outbound.write(contentsOf: [.head(head), .end(nil)])
            }
        } catch {
            logger.trace("Could not answer a refused upgrade", metadata: ["error": "\(error)"])
        }
    }

    /// NIO negotiates an upgrade only on a connection's first request: a later request asking for one is sent back
    /// to the same URI (`307`, connection closed), and the client's retry on a new connection is upgraded.
    static func redirectingLateUpgrades(_ responder: @escaping HTTPChannelHandler.Responder) -> HTTPChannelHandler.Responder {
        struct RedirectedUpgrade: Error {}
        return { request, responseWriter, channel in
            guard request.headers[.upgrade]?.lowercased() == "websocket" else {
                try await responder(request, responseWriter, channel)
                return
            }
            var location = request.uri.path
            if let query = request.uri.query { location += "?\(query)" }
            let response = HTTPResponse(status: .temporaryRedirect, headerFields: [.connection: "close", .location: location])
            try await responseWriter.writeResponse(response)
            throw RedirectedUpgrade()
        }
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 on `responder`'s router, Pusher WebSockets on `/app/<key>` and ryOS's on `/ws` (both accepted by the same
    /// router), behind the connection guards and limits of `settings`. With `WEBSOCKET_ECHO_PATH` set (tests only), an
    /// upgrade to that path is accepted here, with no route, and becomes the echo face (``SocketFace/echo``).
    static func guardedHTTP1PusherUpgrade<WSResponderBuilder: HTTPResponderBuilder>(
        webSocketRouter: WSResponderBuilder,
        http1: HTTP1Channel.Configuration,
        connection: PusherEndpoint,
        settings: ConnectionSettings,
        registry: ConnectionRegistry
    ) -> HTTPServerBuilder where WSResponderBuilder.Responder.Context == AppRequestContext {
        let webSocketResponder = webSocketRouter.buildResponder()
        let echoPath = connection.echoPath
        let webSocket = GuardedHTTPChannel.WebSocketUpgrade(
            maxFrameSize: PusherEndpoint.maxMessageSize,
            accept: { head, channel, logger in
                if let echoPath, head.path.map({ URI($0).path }) == echoPath { return true }
                let request = Request(head: head, body: .init(buffer: .init()))
                let context = AppRequestContext(source: .init(channel: channel, logger: logger))
                return (try? await webSocketResponder.respond(to: request, context: context))?.status == .ok
            },
            install: { head, channel in
                let uri = URI(head.path ?? "")
                let parts = uri.path.split(separator: "/", omittingEmptySubsequences: true)
                var opening = PusherChannelHandler.Opening(
                    key: parts.count == 2 && parts[0] == "app" ? String(parts[1]) : nil,
                    protocolVersion: uri.queryParameters.get("protocol").flatMap { Int($0) },
                    overQuota: head.headerFields[HTTPField.Name(HTTPRequestObserver.overQuotaHeader)!]
                        .flatMap(ConnectionRegistry.Refusal.init(rawValue:))
                )
                // ryOS's `local` provider: its own frames, a ticket instead of a key.
                if uri.path == RuntimeConfigController.websocketPath {
                    opening.face = .ryos
                    opening.ticket = uri.queryParameters.get("ticket")
                } else if let echoPath, uri.path == echoPath {
                    opening.face = .echo
                }
                let operations = channel.pipeline.syncOperations
                try operations.addHandler(WebSocketMaskCheck())
                try operations.addHandler(NIOWebSocketFrameAggregator(
                    minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 64,
                    maxAccumulatedFrameSize: PusherEndpoint.maxMessageSize
                ))
                try operations.addHandler(PusherChannelHandler(connection: connection, opening: opening))
            }
        )
        return .init { responder in
            GuardedHTTPChannel(responder: responder, http1: http1, webSocket: webSocket, settings: settings, registry: registry)
        }
    }
}
