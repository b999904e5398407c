import NIOCore
import NIOHTTP1

/// One keep-alive HTTP/1.1 connection of the publisher: sends the events queued on it one request at a time (the next
/// once the previous response has ended), building each request as it goes out so its `t` is the send time.
final class PublishConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let publisher: Publisher
    private var context: ChannelHandlerContext?
    private var queue = CircularBuffer<Int>()
    private var inFlight: Int?
    private var status: HTTPResponseStatus = .ok

    init(publisher: Publisher) { self.publisher = publisher }

    /// Events queued or in flight here.
    var backlog: Int { queue.count + (inFlight == nil ? 0 : 1) }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    /// Queues event `index` (see `Publisher.request(for:)`) and sends it when the connection is free.
    func enqueue(_ index: Int) {
        guard context != nil else {
            publisher.connectionLost(events: 1)
            return
        }
        queue.append(index)
        sendNext()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status
        case .body:
            break
        case .end:
            guard let index = inFlight else { return }
            inFlight = nil
            publisher.finished(index, status: status)
            sendNext()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        let lost = backlog
        inFlight = nil
        queue.removeAll()
        publisher.connectionLost(events: lost)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        publisher.report("publish connection: \(error)")
        context.close(promise: nil)
    }

    private func sendNext() {
        guard inFlight == nil, let context else { return }
        guard let index = queue.popFirst() else { return }
        inFlight = index
        let (head, body) = publisher.request(for: index, allocator: context.channel.allocator)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
