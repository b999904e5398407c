import NIOCore

/// The request/reply bookkeeping of one Redis connection, as plain state.
///
/// Requests written to the socket wait, in order, for their replies; a reply completes the oldest one. A request whose
/// deadline passes is failed with ``RedisError/timeout`` and keeps its slot until its reply arrives, which is then
/// dropped. The connection counts as stuck (close it; its owner reconnects) only when the oldest request is overdue
/// *and* nothing at all was read for `stallTimeout`: a big batch whose replies are still streaming in is late, not
/// stuck. In subscription mode pub/sub pushes are told apart from replies.
///
/// It takes events (a request written, a reply read, the deadline timer fired, the connection closed), each with the
/// time `now`, and returns what to do. It owns no socket, timer or promise, so it is tested without any;
/// ``RedisPipelineHandler`` carries its actions out on the event loop.
struct RedisReplyStateMachine<Responder> {
    private struct Pending {
        var responder: Responder
        var remaining: Int
        var replies: [RESPValue]
        var deadline: NIODeadline
        var abandoned: Bool
    }

    /// What to do with a reply that was read.
    enum ReadAction {
        /// A pub/sub push: hand it to the subscriber.
        case push(RESPValue)
        /// The only reply of a one-reply request.
        case succeed(Responder, RESPValue)
        /// The last reply of a request with several: all of them, in order.
        case succeedBatch(Responder, [RESPValue])
        /// Nothing to do: more replies of the same request follow, or its caller already gave up.
        case none
        /// A reply nobody waits for: the stream is out of step, close the connection.
        case closeConnection(unexpected: RESPValue)
    }

    /// What to do when the deadline timer fires.
    enum TimerAction {
        case none
        /// Fail these with ``RedisError/timeout``; their slots stay for the replies still to come.
        case failOverdue([Responder])
        /// Stuck: fail all of these with ``RedisError/timeout`` and close the connection.
        case failAllAndClose([Responder])
    }

    /// How long an overdue connection may stay silent before it is considered dead.
    let stallTimeout: TimeAmount
    /// Set once a subscriber's connection is ready: from then on every reply goes to the subscriber, which sends its
    /// commands without a tracked request and matches replies to them itself.
    var subscriptionMode = false
    private var pending = CircularBuffer<Pending>(initialCapacity: 64)
    /// The last time the connection showed life while requests waited: a read, or a write onto an idle connection.
    private var lastProgress: NIODeadline

    init(stallTimeout: TimeAmount, now: NIODeadline) {
        self.stallTimeout = stallTimeout
        self.lastProgress = now
    }

    /// Requests still owed replies (abandoned ones included, until their replies arrive).
    var inFlight: Int { pending.count }

    /// A request producing `replyCount` (> 0) replies was written.
    mutating func written(_ responder: Responder, replyCount: Int, deadline: NIODeadline, now: NIODeadline) {
        precondition(replyCount > 0, "a request without replies is not tracked")
        if pending.isEmpty { lastProgress = now }
        pending.append(Pending(responder: responder, remaining: replyCount, replies: [], deadline: deadline, abandoned: false))
    }

    /// A reply (or push) was read.
    mutating func read(_ reply: RESPValue, now: NIODeadline) -> ReadAction {
        lastProgress = now
        // A subscriber matches every reply itself (confirmations, errors, pongs: ``RedisSubscriberStateMachine``).
        if subscriptionMode { return .push(reply) }
        guard !pending.isEmpty else { return .closeConnection(unexpected: reply) }
        pending[pending.startIndex].remaining -= 1
        guard pending[pending.startIndex].remaining == 0 else {
            if !pending[pending.startIndex].abandoned { pending[pending.startIndex].replies.append(reply) }
            return .none
        }
        let head = pending.removeFirst()
        // A burst can grow the queue to tens of thousands of slots; give that memory back once it drains.
        if pending.isEmpty && pending.capacity > 4096 { pending = CircularBuffer(initialCapacity: 64) }
        if head.abandoned { return .none }
        if head.replies.isEmpty { return .succeed(head.responder, reply) }
        var replies = head.replies
        replies.append(reply)
        return .succeedBatch(head.responder, replies)
    }

    /// The periodic deadline check.
    mutating func timerFired(now: NIODeadline) -> TimerAction {
        guard let head = pending.first else { return .none }
        if head.deadline <= now && now - lastProgress >= stallTimeout {
            // Overdue and silent: the server is stuck or the link is dead. Replies of a pipelined stream come in
            // order, so nothing behind it can arrive sooner.
            return .failAllAndClose(removeAll())
        }
        var overdue: [Responder] = []
        for index in pending.indices where !pending[index].abandoned && pending[index].deadline <= now {
            overdue.append(pending[index].responder)
            pending[index].abandoned = true
            pending[index].replies = []
        }
        return overdue.isEmpty ? .none : .failOverdue(overdue)
    }

    /// The connection closed or broke: every request still waiting, to fail.
    mutating func closed() -> [Responder] {
        removeAll()
    }

    private mutating func removeAll() -> [Responder] {
        var waiting: [Responder] = []
        while let entry = pending.popFirst() {
            if !entry.abandoned { waiting.append(entry.responder) }
        }
        return waiting
    }
}
