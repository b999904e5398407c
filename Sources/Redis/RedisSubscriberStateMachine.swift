import NIOCore

/// The bookkeeping of a pub/sub subscriber, as plain state: the channels wanted, the callers waiting for Redis to
/// confirm a subscribe or unsubscribe, and the resubscription after a reconnect (every wanted channel again, then one
/// ``RedisSubscriberEvent/reconnected``).
///
/// It takes events (a subscribe or unsubscribe request, the connection ready or lost, a push read, a confirmation
/// timed out, close) and returns what to do. It owns no socket, timer or promise (`Waiter` is a promise in
/// ``RedisSubscriber``, anything in a test), so it is tested without any.
struct RedisSubscriberStateMachine<Waiter> {
    /// A confirmation a caller waits for.
    enum Confirmation: Hashable {
        case subscribe(String)
        case unsubscribe(String)
    }

    /// What to do with a subscribe or unsubscribe request.
    enum RequestAction {
        /// Nothing to wait for: complete the caller now (`error` set: fail it).
        case done(error: RedisError?)
        /// Send `command` for `channels` (when `send`) and wait for these confirmations (fail them after the timeout).
        case wait(channels: [String], send: Bool, confirmations: [Confirmation])
    }

    /// What to do with a push read from the connection.
    enum PushAction {
        case none
        /// A message to deliver.
        case message(channel: String, payload: ByteBuffer)
        /// Confirmations arrived: complete these waiters, and yield ``RedisSubscriberEvent/reconnected`` when
        /// `reconnected` (the last channel of a resubscription is confirmed).
        case confirmed([Waiter], reconnected: Bool)
    }

    /// Channels per SUBSCRIBE command when resubscribing after a reconnect: one SUBSCRIBE of tens of thousands of
    /// channels is one huge write and reply burst.
    let resubscribeBatchSize: Int
    /// The channels wanted.
    private(set) var channels = Set<String>()
    /// Whether the connection is ready (subscribe commands can go out).
    private(set) var isReady = false
    private var isClosed = false
    private var waiters: [Confirmation: [Waiter]] = [:]
    private var awaitingResubscribe = Set<String>()
    private var signalReconnect = false

    init(resubscribeBatchSize: Int = 500) {
        self.resubscribeBatchSize = resubscribeBatchSize
    }

    /// Callers want `requested`; `makeWaiter` makes one waiter per channel that is new.
    mutating func subscribe(_ requested: [String], makeWaiter: () -> Waiter) -> (RequestAction, [Waiter]) {
        guard !isClosed else { return (.done(error: .shutdown), []) }
        let new = Array(Set(requested).subtracting(channels))
        guard !new.isEmpty else { return (.done(error: nil), []) }
        channels.formUnion(new)
        let confirmations = new.map(Confirmation.subscribe)
        let made = expect(confirmations, makeWaiter: makeWaiter)
        return (.wait(channels: new, send: isReady, confirmations: confirmations), made)
    }

    /// Callers no longer want `requested`. Besides the action, returns subscribe waiters that are moot now (complete
    /// them) and whether a resubscription just finished (yield ``RedisSubscriberEvent/reconnected``).
    mutating func unsubscribe(
        _ requested: [String], makeWaiter: () -> Waiter
    ) -> (action: RequestAction, waiters: [Waiter], moot: [Waiter], reconnected: Bool) {
        guard !isClosed else { return (.done(error: nil), [], [], false) }
        let present = requested.filter { channels.contains($0) }
        guard !present.isEmpty else { return (.done(error: nil), [], [], false) }
        channels.subtract(present)
        awaitingResubscribe.subtract(present)
        var moot: [Waiter] = []
        for channel in present {
            moot += waiters.removeValue(forKey: .subscribe(channel)) ?? []
        }
        let reconnected = finishResubscribeIfDone()
        guard isReady else { return (.done(error: nil), [], moot, reconnected) }
        let confirmations = present.map(Confirmation.unsubscribe)
        let made = expect(confirmations, makeWaiter: makeWaiter)
        return (.wait(channels: present, send: true, confirmations: confirmations), made, moot, reconnected)
    }

    /// The connection is ready (first time, or again after it was lost). Returns the SUBSCRIBE batches to send, in
    /// order, and whether a resubscription already finished (nothing was wanted).
    mutating func connected(isReconnect: Bool) -> (batches: [[String]], reconnected: Bool) {
        isReady = true
        let wanted = channels.sorted()
        let batches = stride(from: 0, to: wanted.count, by: resubscribeBatchSize).map {
            Array(wanted[$0..<min($0 + resubscribeBatchSize, wanted.count)])
        }
        guard isReconnect else { return (batches, false) }
        awaitingResubscribe = channels
        signalReconnect = true
        return (batches, finishResubscribeIfDone())
    }

    /// The connection was lost; it reconnects by itself.
    mutating func disconnected() {
        isReady = false
    }

    /// A push was read.
    mutating func push(_ push: RESPValue) -> PushAction {
        guard case .array(let items) = push, items.count >= 3, let kind = items[0].string else { return .none }
        switch kind {
        case "message":
            guard let channel = items[1].string, case .bulkString(let payload) = items[2] else { return .none }
            return .message(channel: channel, payload: payload)
        case "pmessage":
            guard items.count >= 4, let channel = items[2].string, case .bulkString(let payload) = items[3] else {
                return .none
            }
            return .message(channel: channel, payload: payload)
        case "subscribe":
            guard let channel = items[1].string else { return .none }
            let done = waiters.removeValue(forKey: .subscribe(channel)) ?? []
            let reconnected = awaitingResubscribe.remove(channel) != nil && finishResubscribeIfDone()
            return .confirmed(done, reconnected: reconnected)
        case "unsubscribe":
            guard let channel = items[1].string else { return .none }
            return .confirmed(waiters.removeValue(forKey: .unsubscribe(channel)) ?? [], reconnected: false)
        default:
            return .none
        }
    }

    /// The time to confirm these passed: the waiters still waiting, to fail with the error returned.
    mutating func timedOut(_ confirmations: [Confirmation]) -> (waiters: [Waiter], error: RedisError) {
        var expired: [Waiter] = []
        for confirmation in confirmations { expired += waiters.removeValue(forKey: confirmation) ?? [] }
        return (expired, isReady ? .timeout : .unavailable("not connected to Redis"))
    }

    /// Close for good: every waiter, to fail with ``RedisError/shutdown``.
    mutating func close() -> [Waiter] {
        isClosed = true
        isReady = false
        let all = waiters.values.flatMap { $0 }
        waiters = [:]
        return all
    }

    /// Shrinks the tables to what they hold now (they keep their largest size otherwise).
    mutating func compact() {
        // Built element by element: `Set(aSet)` would keep the old storage.
        channels = Set(channels.map { $0 })
        waiters = Dictionary(uniqueKeysWithValues: waiters.map { ($0.key, $0.value) })
        awaitingResubscribe = Set(awaitingResubscribe.map { $0 })
    }

    /// Registers one new waiter per confirmation.
    private mutating func expect(_ confirmations: [Confirmation], makeWaiter: () -> Waiter) -> [Waiter] {
        confirmations.map { confirmation -> Waiter in
            let waiter = makeWaiter()
            waiters[confirmation, default: []].append(waiter)
            return waiter
        }
    }

    private mutating func finishResubscribeIfDone() -> Bool {
        guard signalReconnect && awaitingResubscribe.isEmpty else { return false }
        signalReconnect = false
        return true
    }
}
