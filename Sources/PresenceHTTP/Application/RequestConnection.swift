import HummingbirdWebSocket
import NIOCore
import Synchronization

/// What a request's context knows of its connection: the channel (weakly: a context must never keep a closed
/// connection alive) and the WebSocket handler an upgrade chose, made on first use so plain requests never pay for
/// it.
final class RequestConnection: Sendable {
    weak let channel: (any Channel)?
    private let reference = Mutex<WebSocketHandlerReference<AppRequestContext>?>(nil)

    init(channel: any Channel) {
        self.channel = channel
    }

    var webSocket: WebSocketHandlerReference<AppRequestContext> {
        reference.withLock { reference in
            if let reference { return reference }
            let made = WebSocketHandlerReference<AppRequestContext>()
            reference = made
            return made
        }
    }

    func releaseWebSocket() {
        reference.withLock { $0 = nil }
    }
}
