import NIOCore
import Synchronization

/// The way to the sockets of one event loop: what the hub and the sockets' tasks send is queued here, in order, and
/// written by one `execute` on the loop for everything queued meanwhile (not one hop per socket). A broadcast is one
/// entry, its frame and the channel's handlers on this loop; those writes are flushed once per socket when the queue
/// has been written, so a socket that gets several frames in one turn of the loop takes one `writev`.
final class DeliveryLane: Sendable {
    /// A handler, reached only on its lane's event loop (``drain()``).
    struct Handler: @unchecked Sendable {
        let value: PusherChannelHandler
    }

    enum Work: Sendable {
        /// One frame to every handler listed (the sockets of one channel on this loop).
        case broadcast(OutboundFrame, [Handler])
        /// Something one socket does (a reply, a close, a ping), in its turn.
        case run(Handler, @Sendable (PusherChannelHandler) -> Void)
    }

    private struct Queue {
        var work: [Work] = []
        /// An `execute` is on its way that will write ``work``.
        var scheduled = false
    }

    let eventLoop: any EventLoop
    private let queue = Mutex(Queue())
    /// The loop's own state (touched only in ``drain()``, on the loop): the array the next drain swaps in, and the
    /// handlers written to and not yet flushed.
    private struct LoopState: @unchecked Sendable {
        var spare: [Work] = []
        var unflushed: [PusherChannelHandler] = []
    }

    private let loopState: NIOLoopBoundBox<LoopState>

    private init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.loopState = NIOLoopBoundBox.makeBoxSendingValue(LoopState(), eventLoop: eventLoop)
    }

    private static let lanes = Mutex<[ObjectIdentifier: DeliveryLane]>([:])

    /// The lane of `eventLoop` (one per loop, for the process's life).
    static func of(_ eventLoop: any EventLoop) -> DeliveryLane {
        lanes.withLock { lanes in
            if let lane = lanes[ObjectIdentifier(eventLoop)] { return lane }
            let lane = DeliveryLane(eventLoop: eventLoop)
            lanes[ObjectIdentifier(eventLoop)] = lane
            return lane
        }
    }

    /// Queues `work` behind what is queued already; the first in an empty queue schedules the drain.
    func submit(_ work: Work) {
        let schedule = queue.withLock { queue -> Bool in
            queue.work.append(work)
            defer { queue.scheduled = true }
            return !queue.scheduled
        }
        if schedule {
            eventLoop.execute { self.drain() }
        }
    }

    /// On the loop: everything queued, in order, then one flush per socket written to.
    private func drain() {
        var state = loopState.value
        loopState.value = LoopState()
        var work = state.spare
        queue.withLock { queue in
            swap(&queue.work, &work)
            queue.scheduled = false
        }
        for item in work {
            switch item {
            case .broadcast(let frame, let handlers):
                for handler in handlers where handler.value.deliver(frame) {
                    state.unflushed.append(handler.value)
                }
            case .run(let handler, let body):
                body(handler.value)
            }
        }
        for handler in state.unflushed { handler.flushDelivered() }
        state.unflushed.removeAll(keepingCapacity: true)
        work.removeAll(keepingCapacity: true)
        state.spare = work
        loopState.value = state
    }
}

extension DeliveryLane {
    /// One broadcast's sockets grouped by event loop: one ``Work/broadcast(_:_:)`` per lane.
    struct Fanout {
        private var lanes: [(lane: DeliveryLane, handlers: [Handler])] = []

        var isEmpty: Bool { lanes.isEmpty }

        mutating func add(_ outbound: PusherOutbound, capacity: Int) {
            if let index = lanes.firstIndex(where: { $0.lane === outbound.lane }) {
                lanes[index].handlers.append(outbound.handler)
            } else {
                var handlers: [Handler] = []
                handlers.reserveCapacity(capacity)
                handlers.append(outbound.handler)
                lanes.append((outbound.lane, handlers))
            }
        }

        /// Queues `frame` to every socket added, one entry per lane.
        func submit(_ frame: OutboundFrame) {
            for (lane, handlers) in lanes { lane.submit(.broadcast(frame, handlers)) }
        }
    }
}
