import NIOCore

/// Matches replies to requests in order, so any number of commands can be in flight on one connection.
///
/// Also enforces the bounded wait: a request whose deadline passes fails with ``RedisError/timeout`` and its
/// slot is kept for the reply still to come. The connection itself is closed (the owner reconnects) only when it
/// is stuck: the oldest request is overdue *and* nothing at all has been read for `stallTimeout`. A large batch
/// whose replies are still streaming in is late, not stuck, so it never takes down the requests that share the
/// connection. In subscription mode, pub/sub pushes go to `onPush` instead of a request.
final class RedisPipelineHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var responder: RedisRequest.Responder
        var remaining: Int
        var replies: [RESPValue]
        var deadline: NIODeadline
        var abandoned: Bool
    }

    private var pending = CircularBuffer<Pending>(initialCapacity: 64)
    private var timer: RepeatedTask?
    private let checkInterval: TimeAmount
    private let stallTimeout: TimeAmount
    /// The last time the connection showed life while requests waited: a read, or a write onto an idle connection.
    private var lastProgress = NIODeadline.now()

    /// Receives pub/sub pushes (`message`, `subscribe`, ...) once ``subscriptionMode`` is on.
    var onPush: ((RESPValue) -> Void)?
    /// Set by a subscriber once its handshake is done: from then on pushes are told apart from replies.
    var subscriptionMode = false

    /// - Parameters:
    ///   - stallTimeout: how long an overdue connection may stay silent before it is considered dead.
    ///   - checkInterval: how often deadlines are checked.
    init(stallTimeout: TimeAmount, checkInterval: TimeAmount = .milliseconds(100)) {
        self.stallTimeout = stallTimeout
        self.checkInterval = checkInterval
    }

    /// Requests still waiting for replies.
    var inFlight: Int { pending.count }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: checkInterval, delay: checkInterval) { _ in
            loopBoundSelf.value.expire(context: loopBoundContext.value)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        failAll(.connectionLost)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        guard request.replyCount > 0 else {
            context.write(wrapOutboundOut(request.payload), promise: promise)
            return
        }
        if pending.isEmpty { lastProgress = .now() }
        pending.append(Pending(
            responder: request.responder,
            remaining: request.replyCount,
            replies: [],
            deadline: request.deadline,
            abandoned: false
        ))
        context.write(wrapOutboundOut(request.payload), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = unwrapInboundIn(data)
        lastProgress = .now()
        if subscriptionMode, Self.isPush(reply) {
            onPush?(reply)
            return
        }
        guard !pending.isEmpty else {
            context.fireErrorCaught(RedisError.protocolError("reply without a request: \(reply)"))
            context.close(promise: nil)
            return
        }
        pending[pending.startIndex].remaining -= 1
        let head = pending[pending.startIndex]
        switch head.responder {
        case .single(let promise):
            pending.removeFirst()
            if !head.abandoned { promise.succeed(reply) }
        case .batch(let promise):
            if head.remaining == 0 {
                pending.removeFirst()
                if !head.abandoned {
                    var replies = head.replies
                    replies.append(reply)
                    promise.succeed(replies)
                }
            } else if !head.abandoned {
                pending[pending.startIndex].replies.append(reply)
            }
        case .none:
            pending.removeFirst()
        }
        // A burst can grow the queue to tens of thousands of slots; give that memory back once it drains.
        if pending.isEmpty && pending.capacity > 4096 { pending = CircularBuffer(initialCapacity: 64) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(.connectionLost)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? RedisError, case .protocolError = error {
            failAll(error)
        }
        context.fireErrorCaught(error)
    }

    private func failAll(_ error: RedisError) {
        while let entry = pending.popFirst() {
            if !entry.abandoned { entry.responder.fail(error) }
        }
    }

    private func expire(context: ChannelHandlerContext) {
        guard let head = pending.first else { return }
        let now = NIODeadline.now()
        if head.deadline <= now && now - lastProgress >= stallTimeout {
            // Overdue and silent: the server is stuck or the link is dead. Replies of a pipelined stream come in
            // order, so nothing behind it can arrive sooner. Start over.
            failAll(.timeout)
            context.fireErrorCaught(RedisError.timeout)
            context.close(promise: nil)
            return
        }
        // Overdue requests fail now; their slots stay until their replies arrive, which are then dropped.
        for index in pending.indices where !pending[index].abandoned && pending[index].deadline <= now {
            pending[index].responder.fail(.timeout)
            pending[index].abandoned = true
            pending[index].replies = []
        }
    }

    private static func isPush(_ reply: RESPValue) -> Bool {
        guard case .array(let items) = reply, let first = items.first,
              case .bulkString(let kind) = first else { return false }
        switch kind.readableBytes {
        case 7, 8, 9, 10, 11, 12:
            let name = String(buffer: kind)
            return name == "message" || name == "pmessage" || name == "subscribe" || name == "unsubscribe"
                || name == "psubscribe" || name == "punsubscribe"
        default:
            return false
        }
    }
}
