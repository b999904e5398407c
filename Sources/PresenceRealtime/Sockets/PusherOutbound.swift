import PresenceCore
import NIOCore

/// Where a ``PusherSocket``'s frames go: its ``PusherChannelHandler``, reached on the connection's event loop from
/// whichever task sends (the hub, a subscribe being handled, the liveness check).
package struct PusherOutbound: Sendable {
    let eventLoop: any EventLoop
    private let handler: NIOLoopBound<PusherChannelHandler>

    /// Call on `eventLoop` (the handler is bound to it).
    init(handler: PusherChannelHandler, eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
    }

    /// Runs `body` with the handler on its event loop: at once when already there, else queued behind what was
    /// queued before from the same thread.
    func run(_ body: @escaping @Sendable (PusherChannelHandler) -> Void) {
        if eventLoop.inEventLoop {
            body(handler.value)
        } else {
            let handler = self.handler
            eventLoop.execute { body(handler.value) }
        }
    }
}
