import PresenceCore
import NIOCore

/// Where a ``PusherSocket``'s frames go: its ``PusherChannelHandler``, reached on the connection's event loop through
/// that loop's ``DeliveryLane`` from whichever task sends (the hub, a subscribe being handled, the liveness check).
package struct PusherOutbound: Sendable {
    let eventLoop: any EventLoop
    /// The lane of ``eventLoop``: everything sent from off the loop goes through it, in order.
    let lane: DeliveryLane
    /// The handler, touched only on ``eventLoop`` (by the lane, or by ``run(_:)`` when already there).
    let handler: DeliveryLane.Handler

    /// Call on `eventLoop` (the handler is bound to it).
    init(handler: PusherChannelHandler, eventLoop: any EventLoop) {
        eventLoop.preconditionInEventLoop()
        self.eventLoop = eventLoop
        self.lane = DeliveryLane.of(eventLoop)
        self.handler = DeliveryLane.Handler(value: handler)
    }

    /// Runs `body` with the handler on its event loop: at once when already there, else queued on the loop's lane
    /// behind what was sent before (broadcasts included).
    func run(_ body: @escaping @Sendable (PusherChannelHandler) -> Void) {
        if eventLoop.inEventLoop {
            body(handler.value)
        } else {
            lane.submit(.run(handler, body))
        }
    }
}
