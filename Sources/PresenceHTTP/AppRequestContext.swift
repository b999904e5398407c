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
    /// Set by the WebSocket route when it accepts an upgrade.
    public let webSocket: WebSocketHandlerReference<AppRequestContext>

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.peerAddress = source.channel.remoteAddress?.ipAddress
        self.webSocket = .init()
    }

    /// Bodies larger than this are refused with 413.
    public var maxUploadSize: Int { 64 * 1024 }
}
