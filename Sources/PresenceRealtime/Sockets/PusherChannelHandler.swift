import PresenceCore
import Foundation
import NIOCore
import NIOWebSocket

/// One client WebSocket, Pusher's protocol, ryOS's or the test-only echo (``SocketFace``), served on its connection's
/// event loop: it holds no task while the socket is idle.
///
/// Inbound, after NIO's frame decoder (frames of at most 64 KiB, else close 1009; control frames unfragmented and of at
/// most 125 bytes, else 1002), ``WebSocketMaskCheck`` (unmasked frames, reserved bits or opcodes close with 1002, text
/// that is not UTF-8 with 1007 at the fragment that breaks it) and ``NIOWebSocketFrameAggregator`` (fragments joined,
/// at most 64 KiB in all; out-of-order fragments 1002): text must be valid UTF-8 (else close 1007) and goes to the
/// socket's ``PusherInbox``, whose task handles it (the echo face sends text and binary messages back instead); pings
/// are answered; a close is answered (its code echoed; no code: 1000; a 1-byte payload or a code no one may send:
/// 1002; a reason that is not UTF-8: 1007) and the connection closed; a client that shuts its side without a close
/// frame is closed at once. docs/websocket-conformance.md has the cases.
/// Outbound: frames are written while the channel is writable and queued otherwise; past
/// `PusherSettings.maxQueuedMessages` queued the client is too slow and is closed with 4100. Text frames come serialized
/// (``OutboundFrame``) and are written as they are, past NIO's frame encoder; a broadcast's, from the event loop's
/// ``DeliveryLane``, are flushed once the lane has written everything it holds. A close sends its frame
/// ahead of anything still queued and drops the connection if the client has not closed it within the grace.
package final class PusherChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = WebSocketFrame
    package typealias OutboundIn = WebSocketFrame
    package typealias OutboundOut = WebSocketFrame

    /// What the upgrade request asked for; checked once the connection is a WebSocket, as Pusher does.
    package struct Opening: Sendable {
        package init(key: String?, protocolVersion: Int?, overQuota: ConnectionRegistry.Refusal? = nil, face: SocketFace = .pusher, ticket: String? = nil) {
            self.key = key
            self.protocolVersion = protocolVersion
            self.overQuota = overQuota
            self.face = face
            self.ticket = ticket
        }

        var key: String?
        var protocolVersion: Int?
        /// Set when the connection is past `MAX_CONNECTIONS` or the per-address limit: it gets 4004 and nothing else.
        var overQuota: ConnectionRegistry.Refusal?
        /// The protocol of the socket: ryOS's (`/ws`) has no key or protocol version to check, and gets no `pusher:`
        /// frame, not even in a refusal (only the close).
        package var face: SocketFace = .pusher
        /// A ryOS socket's `?ticket=`, redeemed for its user when it opens.
        package var ticket: String?
    }

    private let connection: PusherEndpoint
    private let opening: Opening
    private var context: ChannelHandlerContext?
    private var socket: PusherSocket?
    private var inbox: PusherInbox?
    /// What waits for the channel to become writable: text as its serialized frame (a broadcast's bytes shared with
    /// every other socket the hub fans the same message out to); the echo face's messages as NIO's frames.
    private enum Outgoing {
        case text(OutboundFrame)
        case frame(WebSocketFrame)
    }

    /// NIO's frame encoder's context: serialized frames are written from there, past the encoder, as they are. `nil`
    /// without the encoder (a test's in-process channel): they go through the pipeline as ``WebSocketFrame``s.
    private var encoderContext: ChannelHandlerContext?
    /// Frames were written by ``deliver(_:)`` and wait for the lane's flush (``flushDelivered()``).
    private var deliveredUnflushed = false

    private var queued: OutboundBacklog<Outgoing>
    /// A close frame went out (or the connection is gone): nothing else does.
    private var closing = false
    private var dropTimer: Scheduled<Void>?
    /// Closes the connection if it has not signed in by then (`PUSHER_SIGNIN_TIMEOUT`).
    private var signinTimer: Scheduled<Void>?
    /// Reading stopped while the inbox is backed up; `readWanted` when a read was asked for meanwhile.
    private var readsHeld = false
    private var readWanted = false

    package init(connection: PusherEndpoint, opening: Opening) {
        self.connection = connection
        self.opening = opening
        self.queued = OutboundBacklog(limit: connection.settings.maxQueuedMessages)
    }

    // MARK: - Lifecycle

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        encoderContext = try? context.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self)
        let settings = connection.settings
        if let refusal = opening.overQuota {
            ConnectionRegistry.countRefusal(refusal, kind: "websocket")
            if opening.face != .pusher {
                close(.unknown(4004), "Over connection quota", grace: PusherEndpoint.closeGrace)
                return
            }
            refuse(PusherProtocol.error("Over connection quota", code: 4004), code: 4004, reason: "Over connection quota")
            return
        }
        if opening.face == .ryos {
            openRyOS(context: context)
            return
        }
        if opening.face == .echo { return }  // no socket in the hub, no inbox: channelRead answers
        guard opening.key == settings.key else {
            refuse(PusherProtocol.error("App key \(opening.key ?? "") not in this cluster", code: 4001), code: 4001, reason: "Unknown app key")
            return
        }
        guard let version = opening.protocolVersion, PusherProtocol.supportedVersions.contains(version) else {
            refuse(PusherProtocol.error("Unsupported protocol version", code: 4007), code: 4007, reason: "Unsupported protocol version")
            return
        }
        let outbound = PusherOutbound(handler: self, eventLoop: context.eventLoop)
        let socket = PusherSocket(
            id: PusherSocket.makeID(), outbound: outbound, channel: context.channel, closeGrace: PusherEndpoint.closeGrace
        )
        self.socket = socket
        let inbox = PusherInbox(connection: connection, socket: socket) {
            outbound.run { $0.resumeReading() }
        }
        self.inbox = inbox
        _ = inbox.push(.open)
        if settings.signinTimeout > 0 {
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            signinTimer = context.eventLoop.scheduleTask(in: .seconds(Int64(settings.signinTimeout))) {
                handler.value.signinDeadline()
            }
        }
    }

    /// A ryOS socket: no key, protocol or sign-in to check; its inbox redeems the ticket and joins the hub.
    private func openRyOS(context: ChannelHandlerContext) {
        let outbound = PusherOutbound(handler: self, eventLoop: context.eventLoop)
        let socket = PusherSocket(
            id: PusherSocket.makeID(), outbound: outbound, channel: context.channel, closeGrace: PusherEndpoint.closeGrace,
            face: .ryos
        )
        self.socket = socket
        let inbox = PusherInbox(connection: connection, socket: socket) {
            outbound.run { $0.resumeReading() }
        }
        self.inbox = inbox
        _ = inbox.push(.openRyOS(ticket: opening.ticket))
    }

    /// Sign-in is required and the time for it ran out.
    private func signinDeadline() {
        signinTimer = nil
        guard let socket, socket.signedIn == nil else { return }
        refuse(PusherProtocol.error("Sign-in required", code: 4009), code: 4009, reason: "Sign-in required")
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        // The socket (kept by the hub until it is removed) reaches this handler through its outbound: drop the way back.
        gone()
        socket = nil
        inbox = nil
        self.context = nil
        encoderContext = nil
    }

    package func channelInactive(context: ChannelHandlerContext) {
        gone()
        context.fireChannelInactive()
    }

    /// The connection closed: nothing more goes out, and the socket leaves the hub (once).
    private func gone() {
        closing = true
        queued.removeAll()
        dropTimer?.cancel()
        dropTimer = nil
        signinTimer?.cancel()
        signinTimer = nil
        guard let inbox else { return }
        self.inbox = nil
        socket?.markClosed()
        _ = inbox.push(.closed)
    }

    // MARK: - Inbound

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            guard !closing else { return }
            let bytes = frame.unmaskedData
            guard let text = String(validating: bytes.readableBytesView, as: UTF8.self) else {
                close(.dataInconsistentWithMessage, "Invalid UTF-8", grace: PusherEndpoint.closeGrace)
                return
            }
            if opening.face == .echo {
                enqueue(.frame(WebSocketFrame(fin: true, opcode: .text, data: bytes)), context)
                return
            }
            guard let inbox else { return }
            socket?.activity.touch()
            if inbox.push(.text(text)) { readsHeld = true }
        case .binary:
            if opening.face == .echo, !closing {
                enqueue(.frame(WebSocketFrame(fin: true, opcode: .binary, data: frame.unmaskedData)), context)
                return
            }
            socket?.activity.touch()
        case .pong:
            // The answer to a WebSocket ping (the liveness check of ryOS sockets; any client may send one).
            socket?.activity.touch()
        case .ping:
            guard !closing else { return }
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            if closing {
                // The client's answer to our close: the handshake is done.
                context.close(promise: nil)
                return
            }
            closing = true
            queued.removeAll()
            socket?.markClosed()
            let (code, reason) = Self.closeAnswer(to: frame.unmaskedData)
            var reply = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
            reply.write(webSocketErrorCode: code)
            reply.writeString(reason)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: reply)))
                .whenComplete { _ in channel.close(promise: nil) }
        default:
            break
        }
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The client closed its side (FIN) without a close frame: it sends nothing more, not even a pong, so the
            // connection ends now rather than at the ping timeout (the server allows half-closure for HTTP).
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case let refusal as WebSocketMaskCheck.Refusal:
            close(refusal.code, refusal.reason, grace: PusherEndpoint.closeGrace)
        case NIOWebSocketFrameAggregator.Error.accumulatedFrameSizeIsTooLarge:
            close(.messageTooLarge, "Message too large", grace: PusherEndpoint.closeGrace)
        case NIOWebSocketFrameAggregator.Error.tooManyFragments:
            // A limit (64 fragments), not a protocol error.
            close(.messageTooLarge, "Too many fragments", grace: PusherEndpoint.closeGrace)
        case is NIOWebSocketFrameAggregator.Error:
            close(.protocolError, "Protocol error", grace: PusherEndpoint.closeGrace)
        case is NIOWebSocketError:
            // WebSocketProtocolErrorHandler, before the aggregator, sent the close frame and closes the connection.
            closing = true
        default:
            context.close(promise: nil)
        }
    }

    package func read(context: ChannelHandlerContext) {
        if readsHeld {
            readWanted = true
        } else {
            context.read()
        }
    }

    /// The inbox is down to ``PusherInbox/resumeAt``: read again.
    func resumeReading() {
        readsHeld = false
        guard readWanted, let context else { return }
        readWanted = false
        context.read()
    }

    // MARK: - Outbound

    /// Writes a text frame now, or queues it while the channel is not writable.
    func send(_ text: OutboundFrame) {
        guard let context, !closing else { return }
        enqueue(.text(text), context)
    }

    /// A broadcast's frame, from the ``DeliveryLane``: written now without a flush, or queued while the channel is not
    /// writable (past the limit: 4100). Returns `true` when this is the first write since the last flush: the lane
    /// then calls ``flushDelivered()`` once it has written everything it holds.
    func deliver(_ frame: OutboundFrame) -> Bool {
        guard let context, !closing else { return false }
        switch queued.offer(.text(frame), writable: context.channel.isWritable) {
        case .write:
            write(frame, context)
            defer { deliveredUnflushed = true }
            return !deliveredUnflushed
        case .queued:
            return false
        case .overCapacity:
            close(.unknown(4100), "Over capacity: client too slow", grace: PusherEndpoint.closeGrace)
            return false
        }
    }

    /// Flushes what ``deliver(_:)`` wrote (from past the encoder, like the writes: one handler fewer to go through).
    func flushDelivered() {
        guard deliveredUnflushed else { return }
        deliveredUnflushed = false
        (encoderContext ?? context)?.flush()
    }

    /// Writes `item` now, or queues it while the channel is not writable (a client too slow to take them: 4100).
    private func enqueue(_ item: Outgoing, _ context: ChannelHandlerContext) {
        switch queued.offer(item, writable: context.channel.isWritable) {
        case .write(let item):
            write(item, context)
            context.flush()
        case .queued:
            break
        case .overCapacity:
            close(.unknown(4100), "Over capacity: client too slow", grace: PusherEndpoint.closeGrace)
        }
    }

    /// Writes `item` without a flush: a serialized frame past NIO's encoder, as it is.
    private func write(_ item: Outgoing, _ context: ChannelHandlerContext) {
        switch item {
        case .text(let frame): write(frame, context)
        case .frame(let frame): context.write(wrapOutboundOut(frame), promise: nil)
        }
    }

    private func write(_ frame: OutboundFrame, _ context: ChannelHandlerContext) {
        if let encoderContext {
            encoderContext.write(NIOAny(IOData.byteBuffer(frame.bytes)), promise: nil)
        } else {
            context.write(wrapOutboundOut(frame.frame), promise: nil)
        }
    }

    /// Writes a WebSocket ping control frame (not queued: control frames may go between messages).
    func ping() {
        guard let context, !closing else { return }
        context.writeAndFlush(
            wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: context.channel.allocator.buffer(capacity: 0))),
            promise: nil
        )
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && !queued.isEmpty {
            while context.channel.isWritable, let item = queued.next() {
                write(item, context)
            }
            context.flush()
        }
        context.fireChannelWritabilityChanged()
    }

    /// Sends a close frame ahead of anything still queued; the connection is dropped if the client has not closed it
    /// within `grace` (a client that stopped reading never takes the frame).
    func close(_ code: WebSocketErrorCode, _ reason: String, grace: Duration) {
        guard let context, !closing else { return }
        closing = true
        queued.removeAll()
        socket?.markClosed()
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(reason)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)), promise: nil)
        let channel = context.channel
        dropTimer = context.eventLoop.scheduleTask(in: TimeAmount(grace)) { channel.close(promise: nil) }
    }

    /// A refusal before the socket exists: a `pusher:error`, then the close.
    private func refuse(_ text: String, code: UInt16, reason: String) {
        guard let context else { return }
        write(OutboundFrame(text: text), context)
        close(.unknown(code), reason, grace: PusherEndpoint.closeGrace)
    }

    /// The answer to a client's close frame (RFC 6455 §5.5.1, §7.4): its code echoed; none: 1000; a payload of one
    /// byte or a code no endpoint may send (0–999, 1004–1006, 1015, 1016–2999, 5000 and up): 1002; a reason that is not
    /// UTF-8: 1007. 1012–1014 (registered with IANA since) count as valid.
    static func closeAnswer(to payload: ByteBuffer) -> (WebSocketErrorCode, String) {
        var payload = payload
        guard payload.readableBytes > 0 else { return (.normalClosure, "") }
        guard let number = payload.readInteger(as: UInt16.self) else { return (.protocolError, "Close frame too short") }
        guard isValidCloseCode(number) else { return (.protocolError, "Invalid close code") }
        guard String(validating: payload.readableBytesView, as: UTF8.self) != nil else {
            return (.dataInconsistentWithMessage, "Invalid UTF-8 in close reason")
        }
        return (WebSocketErrorCode(codeNumber: Int(number)), "")
    }

    /// Whether a client may send `code` in a close frame.
    static func isValidCloseCode(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: true
        default: false
        }
    }

}
