import Logging
import Foundation
import Hummingbird
import NIOCore

/// The request context of every route.
public struct AppRequestContext: RequestContext {
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

    /// Bodies larger than this are refused with 413.
    public var maxUploadSize: Int { 64 * 1024 }
}
