import Logging
import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// The request context of every route.
public struct AppRequestContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's IP address (the load balancer's, behind one), when the request came over a socket.
    public let peerAddress: String?
    private let connection: RequestConnection

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.peerAddress = source.channel.remoteAddress?.ipAddress
        self.connection = RequestConnection(channel: source.channel)
    }

    /// The connection the request came on, while it is open.
    public var channel: (any Channel)? { connection.channel }

    /// Set by the WebSocket route when it accepts an upgrade.
    public var webSocket: WebSocketHandlerReference<AppRequestContext> { connection.webSocket }

    /// Forgets the WebSocket handler chosen at the upgrade; call it once that handler runs. Hummingbird stores the
    /// handler together with a copy of this context inside the context's own reference, a cycle that would otherwise
    /// keep every upgraded request's context alive after its connection closed.
    func releaseWebSocketHandler() {
        connection.releaseWebSocket()
    }

    /// Bodies larger than this are refused with 413.
    public var maxUploadSize: Int { 64 * 1024 }
}
