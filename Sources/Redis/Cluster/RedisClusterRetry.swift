import NIOCore

/// What to do with one cluster call's reply: done, go to another node (MOVED, ASK), or wait and try again (TRYAGAIN,
/// CLUSTERDOWN, LOADING, MASTERDOWN), all inside the call's deadline and with at most `maxRedirects` redirects.
///
/// A plain value: it takes the reply, the node that gave it and `now`, and returns an action; it sends nothing, so it is
/// tested without a socket. Only error replies are acted on: such a reply means the node did not run the command, so
/// sending it again is safe even for a script that is not idempotent. A lost connection is never retried here (the
/// command may have run).
struct RedisClusterRetry {
    enum Action: Equatable {
        /// The reply stands (a result, an error that is not about routing, or the budget is spent).
        case done
        /// Send the call to `node`; when `asking`, precede it with `ASKING` on the same connection. When `moved` is
        /// set the slot map learns that `moved.slot` lives at `node` (and a topology refresh is worth asking for).
        case redirect(to: RedisClusterTopology.Endpoint, asking: Bool, movedSlot: Int?)
        /// Wait `delay`, then route the call again by the (possibly refreshed) slot map.
        case retry(after: TimeAmount, refreshTopology: Bool)
    }

    /// Redirects allowed per call: a slot moves once per migration step, so more means the map is thrashing.
    let maxRedirects: Int
    /// The call's deadline (the bounded wait, `REDIS_TIMEOUT_MS`).
    let deadline: NIODeadline
    /// First pause before a retry; doubles each time, at most `maxDelay`.
    let baseDelay: TimeAmount
    let maxDelay: TimeAmount
    private(set) var redirects = 0
    private(set) var retries = 0

    init(deadline: NIODeadline, maxRedirects: Int = 5, baseDelay: TimeAmount = .milliseconds(10), maxDelay: TimeAmount = .milliseconds(200)) {
        self.deadline = deadline
        self.maxRedirects = maxRedirects
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// The next step after `reply` from `node`.
    mutating func next(after reply: RESPValue, from node: RedisClusterTopology.Endpoint, now: NIODeadline) -> Action {
        guard let message = reply.errorMessage, let error = RedisClusterError(errorReply: message) else { return .done }
        switch error {
        case .moved(let slot, var target), .ask(let slot, var target):
            guard redirects < maxRedirects, now < deadline else { return .done }
            redirects += 1
            // `MOVED 12 :6380`: the host is the one that answered.
            if target.host.isEmpty { target.host = node.host }
            if case .moved = error { return .redirect(to: target, asking: false, movedSlot: slot) }
            return .redirect(to: target, asking: true, movedSlot: nil)
        case .tryAgain, .clusterDown, .loading, .masterDown:
            return backOff(now: now, refreshTopology: error == .clusterDown || error == .masterDown)
        }
    }

    /// The next step after the call could not be sent at all (the node refused the connection, or no primary serves the
    /// slot by the map in hand): nothing ran, so it may go again, after a pause and a fresh slot map, while the deadline
    /// allows. A failover is this: the dead primary refuses until its replica is promoted and the map names it.
    mutating func nextAfterUnsent(now: NIODeadline) -> Action {
        backOff(now: now, refreshTopology: true)
    }

    /// The next pause (doubling from `baseDelay`, at most `maxDelay`), or `.done` when it would pass the deadline.
    private mutating func backOff(now: NIODeadline, refreshTopology: Bool) -> Action {
        let exponent = min(retries, 16)
        let delay = TimeAmount.nanoseconds(min(baseDelay.nanoseconds << exponent, maxDelay.nanoseconds))
        guard now + delay < deadline else { return .done }
        retries += 1
        return .retry(after: delay, refreshTopology: refreshTopology)
    }
}
