import NIOCore
import NIOWebSocket

/// Refuses client frames that are not masked (RFC 6455 §5.1: the server must close the connection, 1002). NIO's
/// frame decoder accepts them; this sits right after it, before fragments are joined, so every frame is checked.
final class WebSocketMaskCheck: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame

    /// Raised (through `errorCaught`) for an unmasked frame; ``PusherChannelHandler`` closes with 1002.
    struct UnmaskedFrame: Error {}

    private var refused = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        guard unwrapInboundIn(data).maskKey != nil else {
            refused = true
            context.fireErrorCaught(UnmaskedFrame())
            return
        }
        context.fireChannelRead(data)
    }
}
