import NIOCore
import NIOWebSocket

/// One subscriber socket after the WebSocket upgrade. Pusher: answers `pusher:connection_established` with
/// `pusher:subscribe`, counts `subscription_succeeded`, answers `pusher:ping`. nchan: subscribed as soon as it is added.
/// Every frame carrying a `seq` is an event: counted, its seq marked in this socket's `SeqSet` (a seq seen before is a
/// duplicate), its latency (now − `t`) put in the loop's histogram.
final class SubscriberHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let kind: Options.SubscribeProtocol
    private let channelName: String
    private let stats: LoopStats
    private let established: EventLoopPromise<Void>
    private var seqs: SeqSet
    private var isEstablished = false
    private var isSubscribed = false

    private static let connectionEstablished = Array("pusher:connection_established".utf8)
    private static let subscriptionSucceeded = Array("pusher_internal:subscription_succeeded".utf8)
    private static let ping = Array("pusher:ping".utf8)
    private static let problem = Array("error".utf8)

    /// - Parameters:
    ///   - established: succeeded once the socket may subscribe (Pusher's `connection_established`, or at once for
    ///     nchan), failed if it closes first.
    ///   - eventsPerChannel: seqs run 0 ..< this.
    init(kind: Options.SubscribeProtocol, channelName: String, eventsPerChannel: Int, stats: LoopStats,
         established: EventLoopPromise<Void>) {
        self.kind = kind
        self.channelName = channelName
        self.stats = stats
        self.established = established
        seqs = SeqSet(capacity: eventsPerChannel)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if kind == .nchan {
            markEstablished()
            markSubscribed()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            let payload = frame.maskKey == nil ? frame.data : frame.unmaskedData
            let event = payload.withUnsafeReadableBytes { FrameScanner.event(in: $0) }
            if let event {
                record(event)
            } else if kind == .pusher {
                payload.withUnsafeReadableBytes { control(context: context, bytes: $0, payload: payload) }
            }
        case .ping:
            let payload = frame.maskKey == nil ? frame.data : frame.unmaskedData
            write(context: context, opcode: .pong, payload)
        case .connectionClose:
            var payload = frame.maskKey == nil ? frame.data : frame.unmaskedData
            let code = payload.readInteger(as: UInt16.self).map(String.init) ?? "none"
            if isEstablished { stats.report("\(channelName): server closed the socket (code \(code))") }
            write(context: context, opcode: .connectionClose, context.channel.allocator.buffer(integer: UInt16(1000)))
            context.close(promise: nil)
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if isEstablished {
            stats.counts.closed += 1
        } else {
            established.fail(ChannelError.inputClosed)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        stats.report("\(channelName): \(error)")
        context.close(promise: nil)
    }

    @inline(__always)
    private func record(_ event: FrameScanner.Event) {
        let now = ProcessClock.wallNanos()
        guard event.seq < seqs.capacity else {
            stats.counts.unexpected += 1
            return
        }
        stats.counts.received += 1
        stats.counts.lastFrameNanos = now
        if seqs.insert(event.seq) {
            stats.counts.distinct += 1
            stats.counts.latency.record(micros: (now - event.t) / 1000)
        } else {
            stats.counts.duplicates += 1
        }
    }

    /// A Pusher control frame: the handshake, the subscription's answer, a ping, an error.
    private func control(context: ChannelHandlerContext, bytes: UnsafeRawBufferPointer, payload: ByteBuffer) {
        if FrameScanner.contains(bytes, Self.connectionEstablished) {
            markEstablished()
            send(context: context, #"{"event":"pusher:subscribe","data":{"channel":"\#(channelName)"}}"#)
        } else if FrameScanner.contains(bytes, Self.subscriptionSucceeded) {
            markSubscribed()
        } else if FrameScanner.contains(bytes, Self.ping) {
            send(context: context, #"{"event":"pusher:pong","data":{}}"#)
        } else if FrameScanner.contains(bytes, Self.problem) {
            stats.report("\(channelName): \(String(buffer: payload))")
        }
    }

    private func markEstablished() {
        guard !isEstablished else { return }
        isEstablished = true
        stats.counts.established += 1
        established.succeed()
    }

    private func markSubscribed() {
        guard !isSubscribed else { return }
        isSubscribed = true
        stats.counts.subscribed += 1
    }

    private func send(context: ChannelHandlerContext, _ text: String) {
        write(context: context, opcode: .text, context.channel.allocator.buffer(string: text))
    }

    /// Writes one client frame, masked as RFC 6455 requires of clients.
    private func write(context: ChannelHandlerContext, opcode: WebSocketOpcode, _ payload: ByteBuffer) {
        let frame = WebSocketFrame(fin: true, opcode: opcode, maskKey: .random(), data: payload)
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }
}
