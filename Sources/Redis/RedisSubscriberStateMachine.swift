import NIOCore

/// The bookkeeping of a pub/sub subscriber, as plain state: the channels wanted, the commands sent and still owed a
/// reply (in order: Redis answers in order, so every confirmation, error and pong belongs to the oldest one), the
/// callers waiting for Redis to confirm a subscribe or unsubscribe, and the resubscription after a reconnect (every
/// wanted channel again, then one ``RedisSubscriberEvent/reconnected``).
///
/// It takes events (a subscribe or unsubscribe request, a health check, the connection ready or lost, a reply read, a
/// confirmation timed out, close) and returns what to do. It owns no socket, timer or promise (`Waiter` is a promise
/// in ``RedisSubscriber``, anything in a test), so it is tested without any.
///
/// Classic mode speaks `SUBSCRIBE` / `UNSUBSCRIBE` / `message`; sharded mode (Redis Cluster) `SSUBSCRIBE` /
/// `SUNSUBSCRIBE` / `smessage`, one hash slot per command, and reports channels Redis unsubscribed by itself (their slot
/// moved to another node) or refused (`MOVED`, `CLUSTERDOWN`) so that their owner can route them again.
struct RedisSubscriberStateMachine<Waiter> {
    /// Classic or sharded pub/sub.
    enum Mode: Sendable {
        case classic
        case sharded

        var subscribeCommand: String { self == .classic ? "SUBSCRIBE" : "SSUBSCRIBE" }
        var unsubscribeCommand: String { self == .classic ? "UNSUBSCRIBE" : "SUNSUBSCRIBE" }
    }

    /// A confirmation a caller waits for.
    enum Confirmation: Hashable {
        case subscribe(String)
        case unsubscribe(String)
    }

    /// What to do with a subscribe or unsubscribe request.
    enum RequestAction {
        /// Nothing to wait for: complete the caller now (`error` set: fail it).
        case done(error: RedisError?)
        /// Send one command per batch (none while not connected) and wait for these confirmations (fail them after the
        /// timeout).
        case wait(batches: [[String]], confirmations: [Confirmation])
    }

    /// What to do with a reply read from the connection.
    enum PushAction {
        case none
        /// A message to deliver.
        case message(channel: String, payload: ByteBuffer)
        /// Confirmations arrived: complete these waiters, and yield ``RedisSubscriberEvent/reconnected`` when
        /// `reconnected` (the last channel of a resubscription is confirmed).
        case confirmed([Waiter], reconnected: Bool)
        /// Redis refused the oldest command in flight (`error`): fail these waiters with it. `channels` are wanted but
        /// not subscribed (sharded: route them again).
        case refused([Waiter], channels: [String], error: String, reconnected: Bool)
        /// Redis unsubscribed these wanted channels by itself (sharded: their slot moved). They are no longer wanted
        /// here: route them again.
        case dropped([String])
    }

    /// A command sent and still owed replies.
    private enum Sent {
        case subscribe(Set<String>)
        case unsubscribe(Set<String>)
        case ping
    }

    let mode: Mode
    /// Channels per command when resubscribing after a reconnect: one SUBSCRIBE of tens of thousands of channels is
    /// one huge write and reply burst.
    let resubscribeBatchSize: Int
    /// The channels wanted.
    private(set) var channels = Set<String>()
    /// Whether the connection is ready (subscribe commands can go out).
    private(set) var isReady = false
    private var isClosed = false
    private var sent = CircularBuffer<Sent>()
    private var waiters: [Confirmation: [Waiter]] = [:]
    private var awaitingResubscribe = Set<String>()
    private var signalReconnect = false

    init(mode: Mode = .classic, resubscribeBatchSize: Int = 500) {
        self.mode = mode
        self.resubscribeBatchSize = resubscribeBatchSize
    }

    /// Commands sent and still owed a reply.
    var commandsInFlight: Int { sent.count }

    /// Callers want `requested`; `makeWaiter` makes one waiter per channel that is new.
    mutating func subscribe(_ requested: [String], makeWaiter: () -> Waiter) -> (RequestAction, [Waiter]) {
        guard !isClosed else { return (.done(error: .shutdown), []) }
        let new = Array(Set(requested).subtracting(channels))
        guard !new.isEmpty else { return (.done(error: nil), []) }
        channels.formUnion(new)
        let confirmations = new.map(Confirmation.subscribe)
        let made = expect(confirmations, makeWaiter: makeWaiter)
        let batches = isReady ? self.batches(new, size: .max) : []
        for batch in batches { sent.append(.subscribe(Set(batch))) }
        return (.wait(batches: batches, confirmations: confirmations), made)
    }

    /// Callers no longer want `requested`. Besides the action, returns subscribe waiters that are moot now (complete
    /// them) and whether a resubscription just finished (yield ``RedisSubscriberEvent/reconnected``).
    mutating func unsubscribe(
        _ requested: [String], makeWaiter: () -> Waiter
    ) -> (action: RequestAction, waiters: [Waiter], moot: [Waiter], reconnected: Bool) {
        guard !isClosed else { return (.done(error: nil), [], [], false) }
        let present = Array(Set(requested).intersection(channels))
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
        let batches = self.batches(present, size: .max)
        for batch in batches { sent.append(.unsubscribe(Set(batch))) }
        return (.wait(batches: batches, confirmations: confirmations), made, moot, reconnected)
    }

    /// No longer wants `lost` and sends nothing for them (another subscriber takes them over).
    mutating func forget(_ lost: [String]) {
        channels.subtract(lost)
        awaitingResubscribe.subtract(lost)
    }

    /// The health check is due. `true`: send a PING. `false` with `stale`: the previous PING is still unanswered, so
    /// the link is dead although open: close it (it reconnects).
    mutating func healthCheck() -> (ping: Bool, stale: Bool) {
        guard isReady else { return (false, false) }
        if sent.contains(where: { if case .ping = $0 { return true } else { return false } }) { return (false, true) }
        sent.append(.ping)
        return (true, false)
    }

    /// The connection is ready (first time, or again after it was lost). Returns the commands to send, in order, and
    /// whether a resubscription already finished (nothing was wanted).
    mutating func connected(isReconnect: Bool) -> (batches: [[String]], reconnected: Bool) {
        isReady = true
        sent.removeAll(keepingCapacity: true)
        let batches = self.batches(channels.sorted(), size: resubscribeBatchSize)
        for batch in batches { sent.append(.subscribe(Set(batch))) }
        guard isReconnect else { return (batches, false) }
        awaitingResubscribe = channels
        signalReconnect = true
        return (batches, finishResubscribeIfDone())
    }

    /// The connection was lost; it reconnects by itself. Commands in flight are gone with it.
    mutating func disconnected() {
        isReady = false
        sent.removeAll(keepingCapacity: true)
    }

    /// A reply was read (in subscription mode every reply comes here: pushes, confirmations, errors, pongs).
    mutating func push(_ push: RESPValue) -> PushAction {
        if case .error(let message) = push { return refuse(message) }
        if push.string?.uppercased() == "PONG" { return pong() }
        guard case .array(let items) = push, items.count >= 2, let kind = items[0].string else { return .none }
        switch kind {
        case "message", "smessage":
            guard items.count >= 3, let channel = items[1].string, case .bulkString(let payload) = items[2] else {
                return .none
            }
            return .message(channel: channel, payload: payload)
        case "pmessage":
            guard items.count >= 4, let channel = items[2].string, case .bulkString(let payload) = items[3] else {
                return .none
            }
            return .message(channel: channel, payload: payload)
        case "subscribe", "ssubscribe":
            guard let channel = items[1].string else { return .none }
            _ = match(channel, subscribe: true)
            let done = waiters.removeValue(forKey: .subscribe(channel)) ?? []
            let reconnected = awaitingResubscribe.remove(channel) != nil && finishResubscribeIfDone()
            return .confirmed(done, reconnected: reconnected)
        case "unsubscribe", "sunsubscribe":
            guard let channel = items[1].string else { return .none }
            if match(channel, subscribe: false) {
                return .confirmed(waiters.removeValue(forKey: .unsubscribe(channel)) ?? [], reconnected: false)
            }
            // Not asked for: Redis dropped the channel (its slot moved). Whoever routes it must subscribe it again.
            guard channels.remove(channel) != nil else { return .none }
            awaitingResubscribe.remove(channel)
            return .dropped([channel])
        case "pong":
            return pong()
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
        sent.removeAll(keepingCapacity: true)
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

    // MARK: - Private

    /// `channels` as commands: sharded mode puts one hash slot in each command (Redis refuses a cross-slot one).
    private func batches(_ channels: [String], size: Int) -> [[String]] {
        var groups: [[String]]
        switch mode {
        case .classic:
            groups = channels.isEmpty ? [] : [channels]
        case .sharded:
            var bySlot: [Int: [String]] = [:]
            for channel in channels { bySlot[RedisHashSlot.slot(for: channel), default: []].append(channel) }
            groups = bySlot.keys.sorted().map { bySlot[$0]! }
        }
        return groups.flatMap { group in
            stride(from: 0, to: group.count, by: size).map { Array(group[$0..<min($0 + size, group.count)]) }
        }
    }

    /// Ticks `channel` off the oldest command of its kind that still awaits it; `false` when none does.
    private mutating func match(_ channel: String, subscribe: Bool) -> Bool {
        for index in sent.indices {
            switch sent[index] {
            case .subscribe(var awaiting) where subscribe && awaiting.contains(channel):
                awaiting.remove(channel)
                if awaiting.isEmpty { sent.remove(at: index) } else { sent[index] = .subscribe(awaiting) }
                return true
            case .unsubscribe(var awaiting) where !subscribe && awaiting.contains(channel):
                awaiting.remove(channel)
                if awaiting.isEmpty { sent.remove(at: index) } else { sent[index] = .unsubscribe(awaiting) }
                return true
            default:
                continue
            }
        }
        return false
    }

    private mutating func pong() -> PushAction {
        if let index = sent.firstIndex(where: { if case .ping = $0 { return true } else { return false } }) {
            sent.remove(at: index)
        }
        return .none
    }

    /// An error answers the oldest command in flight, whatever it was.
    private mutating func refuse(_ error: String) -> PushAction {
        guard let head = sent.popFirst() else { return .none }
        switch head {
        case .ping:
            return .none
        case .unsubscribe(let awaiting):
            // The channels are no longer wanted either way.
            var failed: [Waiter] = []
            for channel in awaiting { failed += waiters.removeValue(forKey: .unsubscribe(channel)) ?? [] }
            return .refused(failed, channels: [], error: error, reconnected: false)
        case .subscribe(let awaiting):
            let refused = awaiting.filter { channels.contains($0) }.sorted()
            var failed: [Waiter] = []
            for channel in refused { failed += waiters.removeValue(forKey: .subscribe(channel)) ?? [] }
            var reconnected = false
            if !refused.isEmpty {
                awaitingResubscribe.subtract(refused)
                reconnected = finishResubscribeIfDone()
            }
            return .refused(failed, channels: refused, error: error, reconnected: reconnected)
        }
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
