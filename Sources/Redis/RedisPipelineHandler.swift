import NIOCore

/// Matches replies to requests in order, so any number of commands can be in flight on one connection, and enforces
/// the bounded wait. The rules live in ``RedisReplyStateMachine``; this handler feeds it the channel's events and
/// carries out its actions (complete or fail promises, hand pushes on, close the channel).
final class RedisPipelineHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private var state: RedisReplyStateMachine<RedisRequest.Responder>
    private var timer: RepeatedTask?
    private let checkInterval: TimeAmount

    /// Receives pub/sub pushes (`message`, `subscribe`, ...) once ``subscriptionMode`` is on.
    var onPush: ((RESPValue) -> Void)?
    /// Set by a subscriber once its handshake is done: from then on pushes are told apart from replies.
    var subscriptionMode: Bool {
        get { state.subscriptionMode }
        set { state.subscriptionMode = newValue }
    }

    /// - Parameters:
    ///   - stallTimeout: how long an overdue connection may stay silent before it is considered dead.
    ///   - checkInterval: how often deadlines are checked.
    init(stallTimeout: TimeAmount, checkInterval: TimeAmount = .milliseconds(100)) {
        self.state = RedisReplyStateMachine(stallTimeout: stallTimeout, now: .now())
        self.checkInterval = checkInterval
    }

    /// Requests still waiting for replies.
    var inFlight: Int { state.inFlight }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: checkInterval, delay: checkInterval) { _ in
            loopBoundSelf.value.timerFired(context: loopBoundContext.value)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        for responder in state.closed() { responder.fail(.connectionLost) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if request.replyCount > 0 {
            state.written(request.responder, replyCount: request.replyCount, deadline: request.deadline, now: .now())
        }
        context.write(wrapOutboundOut(request.payload), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state.read(unwrapInboundIn(data), now: .now()) {
        case .push(let push):
            onPush?(push)
        case .succeed(let responder, let reply):
            responder.succeed(reply)
        case .succeedBatch(let responder, let replies):
            responder.succeed(replies)
        case .none:
            break
        case .closeConnection(let reply):
            context.fireErrorCaught(RedisError.protocolError("reply without a request: \(reply)"))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        for responder in state.closed() { responder.fail(.connectionLost) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? RedisError, case .protocolError = error {
            for responder in state.closed() { responder.fail(error) }
        }
        context.fireErrorCaught(error)
    }

    private func timerFired(context: ChannelHandlerContext) {
        switch state.timerFired(now: .now()) {
        case .none:
            break
        case .failOverdue(let responders):
            for responder in responders { responder.fail(.timeout) }
        case .failAllAndClose(let responders):
            for responder in responders { responder.fail(.timeout) }
            context.fireErrorCaught(RedisError.timeout)
            context.close(promise: nil)
        }
    }
}
