import NIOCore

/// Inbound channel handler: bytes in, one ``RESPValue`` out per complete reply (via ``RESPReader``).
/// A corrupt stream fires ``RedisError/protocolError(_:)`` and closes the channel: nothing after it can be trusted.
final class RESPDecoderHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = RESPValue

    private let reader = RESPReader()
    private var failed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        let buffer = unwrapInboundIn(data)
        do {
            try reader.feed(buffer)
            while let reply = try reader.next() {
                context.fireChannelRead(wrapInboundOut(reply))
            }
        } catch {
            failed = true
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }
}
