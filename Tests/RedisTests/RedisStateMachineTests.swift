import NIOCore
import Testing

@testable import Redis

/// The connection's, the reply matcher's and the subscriber's rules, driven by events and a clock of our own:
/// no socket, no timer, no Redis.
@Suite("Redis state machines")
struct RedisStateMachineTests {
    final class FakeChannel {}

    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
    func at(_ ms: Int64) -> NIODeadline { t0 + .milliseconds(ms) }
    func push(_ parts: String...) -> RESPValue {
        .array(parts.map { .bulkString(ByteBuffer(string: $0)) })
    }

    // MARK: Connection

    typealias Connection = RedisConnectionStateMachine<FakeChannel, Int>

    func makeConnection(maxWaiting: Int = 10) -> Connection {
        Connection(backoff: Backoff(base: .milliseconds(100), cap: .seconds(2)), maxWaiting: maxWaiting, endpoint: "r:1")
    }

    @Test func requestsWaitForTheFirstConnectionThenGoOutInOrder() {
        var machine = makeConnection()
        guard case .wait(startTimer: true, connect: true) = machine.request(1, deadline: at(500)) else {
            Issue.record("the first request should start the timer and connect"); return
        }
        guard case .wait(startTimer: false, connect: false) = machine.request(2, deadline: at(500)) else {
            Issue.record("a second request only waits"); return
        }
        let channel = FakeChannel()
        guard case .ready(let ready, let isReconnect, let restored, let flush) = machine.connectSucceeded(channel) else {
            Issue.record("connect should make it ready"); return
        }
        #expect(ready === channel && !isReconnect && !restored && flush == [1, 2])
        guard case .write(3, let target) = machine.request(3, deadline: at(500)) else {
            Issue.record("a ready connection writes at once"); return
        }
        #expect(target === channel)
    }

    @Test func aLostConnectionBacksOffReconnectsAndSaysSo() {
        var machine = makeConnection()
        let result1 = machine.start()
        #expect(result1)
        let result2 = machine.start()
        #expect(!result2)
        let first = FakeChannel()
        _ = machine.connectSucceeded(first)
        guard case .scheduleReconnect(let delay, let warning?) = machine.channelClosed(first, endpoint: "r:1") else {
            Issue.record("a lost channel schedules a reconnect with a warning"); return
        }
        #expect(delay >= .milliseconds(80) && delay <= .milliseconds(100))
        #expect(machine.lastFailure == "connection to r:1 lost")
        // Requests now wait; a failed attempt backs off further without a second warning.
        guard case .wait(_, connect: false) = machine.request(7, deadline: at(1000)) else {
            Issue.record("waits while reconnecting"); return
        }
        let result3 = machine.reconnectTimerFired()
        #expect(result3)
        guard case .scheduleReconnect(let second, nil) = machine.connectFailed(endpoint: "r:1", reason: "refused") else {
            Issue.record("a failed attempt backs off quietly"); return
        }
        #expect(second >= .milliseconds(160) && second <= .milliseconds(200))
        #expect(machine.lastFailure == "cannot connect to r:1: refused")
        let result4 = machine.reconnectTimerFired()
        #expect(result4)
        guard case .ready(_, isReconnect: true, restored: true, let flush) = machine.connectSucceeded(FakeChannel()) else {
            Issue.record("the reconnect is reported as one, and as restored"); return
        }
        #expect(flush == [7])
    }

    @Test func aClusterNodeThatRefusesFailsRequestsAtOnce() {
        var machine = Connection(
            backoff: Backoff(base: .milliseconds(100), cap: .seconds(2)), maxWaiting: 10, endpoint: "r:1", failFast: true
        )
        let first = FakeChannel()
        _ = machine.start()
        _ = machine.connectSucceeded(first)
        _ = machine.channelClosed(first, endpoint: "r:1")
        // Lost, not yet known down: a request waits for the first reconnect attempt.
        guard case .wait = machine.request(1, deadline: at(2000)) else {
            Issue.record("waits for the first attempt"); return
        }
        _ = machine.reconnectTimerFired()
        _ = machine.connectFailed(endpoint: "r:1", reason: "refused")
        let (refused, error) = machine.takeWaitingIfUnreachable()
        #expect(refused == [1] && error == .unavailable("cannot connect to r:1: refused"))
        guard case .fail(2, .unavailable) = machine.request(2, deadline: at(2000)) else {
            Issue.record("a refused node fails requests at once"); return
        }
        _ = machine.reconnectTimerFired()
        guard case .ready(_, _, _, let flush) = machine.connectSucceeded(FakeChannel()), flush.isEmpty else {
            Issue.record("back: ready, nothing left waiting"); return
        }
        guard case .write(3, _) = machine.request(3, deadline: at(2000)) else {
            Issue.record("back: writes again"); return
        }
        // Without fail-fast (one Redis), requests keep waiting through refused attempts.
        var patient = makeConnection()
        _ = patient.start()
        _ = patient.connectFailed(endpoint: "r:1", reason: "refused")
        #expect(patient.takeWaitingIfUnreachable().requests.isEmpty)
        guard case .wait = patient.request(4, deadline: at(2000)) else {
            Issue.record("one Redis: waits"); return
        }
    }

    @Test func aLateCloseOfAnOldChannelIsIgnored() {
        var machine = makeConnection()
        _ = machine.start()
        let old = FakeChannel()
        _ = machine.connectSucceeded(old)
        _ = machine.channelClosed(old, endpoint: "r")
        _ = machine.reconnectTimerFired()
        let current = FakeChannel()
        _ = machine.connectSucceeded(current)
        guard case .none = machine.channelClosed(old, endpoint: "r") else {
            Issue.record("the old channel's close must not take the current one down"); return
        }
        #expect(machine.readyChannel === current)
    }

    @Test func waitingIsBoundedInCountAndTime() {
        var machine = makeConnection(maxWaiting: 2)
        _ = machine.request(1, deadline: at(100))
        _ = machine.request(2, deadline: at(300))
        guard case .fail(3, .unavailable(let message)) = machine.request(3, deadline: at(300)) else {
            Issue.record("a full queue refuses at once"); return
        }
        #expect(message.contains("2 commands already waiting") && message.contains("no connection to r:1 yet"))
        let early = machine.waitingTimerFired(now: at(50))
        #expect(early.expired.isEmpty && !early.stopTimer)
        let mid = machine.waitingTimerFired(now: at(150))
        #expect(mid.expired == [1] && !mid.stopTimer && machine.waitingCount == 1)
        let late = machine.waitingTimerFired(now: at(300))
        #expect(late.expired == [2] && late.stopTimer)
        // The timer stopped, so the next waiting request starts it again.
        guard case .wait(startTimer: true, _) = machine.request(4, deadline: at(900)) else {
            Issue.record("the timer restarts"); return
        }
    }

    @Test func closeFailsTheWaitingAndRefusesTheRest() {
        var machine = makeConnection()
        _ = machine.request(1, deadline: at(100))
        let action = machine.close()
        #expect(action.fail == [1] && action.channel == nil)
        guard case .fail(2, .shutdown) = machine.request(2, deadline: at(100)) else {
            Issue.record("closed refuses"); return
        }
        let result5 = machine.reconnectTimerFired()
        #expect(!result5)
        let late = FakeChannel()
        guard case .closeChannel(let closed) = machine.connectSucceeded(late) else {
            Issue.record("a connect that completes after close is closed"); return
        }
        #expect(closed === late)
    }

    // MARK: Replies

    typealias Replies = RedisReplyStateMachine<String>

    @Test func repliesCompleteRequestsInOrderAndBatchesWhole() {
        var machine = Replies(stallTimeout: .seconds(1), now: t0)
        machine.written("a", replyCount: 1, deadline: at(500), now: t0)
        machine.written("b", replyCount: 2, deadline: at(500), now: t0)
        guard case .succeed("a", .integer(1)) = machine.read(.integer(1), now: at(1)) else {
            Issue.record("the first reply completes the first request"); return
        }
        guard case .none = machine.read(.integer(2), now: at(2)) else { Issue.record("half a batch waits"); return }
        guard case .succeedBatch("b", let replies) = machine.read(.integer(3), now: at(3)) else {
            Issue.record("the batch completes with both"); return
        }
        #expect(replies == [.integer(2), .integer(3)] && machine.inFlight == 0)
        guard case .closeConnection = machine.read(.integer(4), now: at(4)) else {
            Issue.record("a reply nobody asked for closes the connection"); return
        }
    }

    @Test func anOverdueRequestFailsKeepsItsSlotAndItsReplyIsDropped() {
        var machine = Replies(stallTimeout: .seconds(1), now: t0)
        machine.written("slow", replyCount: 1, deadline: at(100), now: t0)
        machine.written("next", replyCount: 1, deadline: at(5000), now: t0)
        guard case .failOverdue(let failed) = machine.timerFired(now: at(200)) else {
            Issue.record("overdue fails"); return
        }
        #expect(failed == ["slow"] && machine.inFlight == 2)
        guard case .none = machine.timerFired(now: at(300)) else { Issue.record("failed once only"); return }
        guard case .none = machine.read(.integer(1), now: at(400)) else { Issue.record("late reply dropped"); return }
        guard case .succeed("next", .integer(2)) = machine.read(.integer(2), now: at(401)) else {
            Issue.record("the next reply still finds its request"); return
        }
    }

    @Test func onlyAnOverdueAndSilentConnectionCountsAsStuck() {
        var machine = Replies(stallTimeout: .seconds(1), now: t0)
        machine.written("big", replyCount: 3, deadline: at(100), now: t0)
        machine.written("other", replyCount: 1, deadline: at(5000), now: t0)
        // Replies keep streaming: late, not stuck.
        _ = machine.read(.integer(1), now: at(900))
        guard case .failOverdue(["big"]) = machine.timerFired(now: at(1500)) else {
            Issue.record("late but alive only fails the overdue request"); return
        }
        guard case .failAllAndClose(let all) = machine.timerFired(now: at(1900)) else {
            Issue.record("a second of silence with an overdue head is stuck"); return
        }
        #expect(all == ["other"] && machine.inFlight == 0)
    }

    @Test func inSubscriptionModeEveryReplyGoesToTheSubscriber() {
        var machine = Replies(stallTimeout: .seconds(1), now: t0)
        machine.written("ping", replyCount: 1, deadline: at(500), now: t0)
        let message = push("message", "chan", "hi")
        guard case .succeed("ping", _) = machine.read(message, now: at(1)) else {
            Issue.record("outside subscription mode an array is a reply"); return
        }
        machine.subscriptionMode = true
        // Errors and pongs too: the subscriber matches them to the commands it sent, so an error reply to a
        // SUBSCRIBE can never be taken for another request's reply.
        for reply in [message, RESPValue.error("MOVED 1 127.0.0.1:1"), .simpleString("PONG")] {
            guard case .push(reply) = machine.read(reply, now: at(3)) else { Issue.record("\(reply) goes to the subscriber"); return }
        }
    }

    @Test func closingFailsEveryRequestStillOwedButNotTheAbandoned() {
        var machine = Replies(stallTimeout: .seconds(10), now: t0)
        machine.written("a", replyCount: 1, deadline: at(100), now: t0)
        machine.written("b", replyCount: 1, deadline: at(900), now: t0)
        _ = machine.timerFired(now: at(200))
        let result6 = machine.closed()
        #expect(result6 == ["b"])
        #expect(machine.inFlight == 0)
    }

    // MARK: Subscriber

    typealias Subscriber = RedisSubscriberStateMachine<Int>

    final class Counter { var next = 0; func make() -> Int { next += 1; return next } }

    @Test func subscribesWaitForTheConnectionAndItsConfirmation() {
        var machine = Subscriber()
        let counter = Counter()
        let (action, waiters) = machine.subscribe(["a", "a"], makeWaiter: counter.make)
        guard case .wait(batches: [], confirmations: [.subscribe("a")]) = action else {
            Issue.record("not ready: wanted, not sent"); return
        }
        #expect(waiters == [1])
        let (batches, reconnected) = machine.connected(isReconnect: false)
        #expect(batches == [["a"]] && !reconnected)
        guard case .confirmed([1], reconnected: false) = machine.push(push("subscribe", "a", "1")) else {
            Issue.record("the confirmation completes the waiter"); return
        }
        guard case .done(nil) = machine.subscribe(["a"], makeWaiter: counter.make).0 else {
            Issue.record("already wanted: nothing to wait for"); return
        }
        guard case .message(channel: "a", let payload) = machine.push(push("message", "a", "hi")) else {
            Issue.record("messages pass"); return
        }
        #expect(String(buffer: payload) == "hi")
    }

    @Test func anUnsubscribeMakesAPendingSubscribeMoot() {
        var machine = Subscriber()
        let counter = Counter()
        _ = machine.connected(isReconnect: false)
        _ = machine.subscribe(["a"], makeWaiter: counter.make)
        let result = machine.unsubscribe(["a", "never"], makeWaiter: counter.make)
        #expect(result.moot == [1] && result.waiters == [2])
        guard case .wait(batches: [["a"]], confirmations: [.unsubscribe("a")]) = result.action else {
            Issue.record("the unsubscribe is sent for the wanted channel only"); return
        }
        #expect(machine.channels.isEmpty)
        guard case .confirmed([2], _) = machine.push(push("unsubscribe", "a", "0")) else {
            Issue.record("the unsubscribe confirmation completes its waiter"); return
        }
    }

    @Test func aReconnectResubscribesInBatchesAndSignalsOnceAllAreBack() {
        var machine = Subscriber(resubscribeBatchSize: 2)
        let counter = Counter()
        _ = machine.subscribe(["c", "a", "b"], makeWaiter: counter.make)
        _ = machine.connected(isReconnect: false)
        for channel in ["a", "b", "c"] { _ = machine.push(push("subscribe", channel, "1")) }
        machine.disconnected()
        #expect(!machine.isReady)
        let (batches, reconnectedAtOnce) = machine.connected(isReconnect: true)
        #expect(batches == [["a", "b"], ["c"]] && !reconnectedAtOnce)
        guard case .confirmed([], reconnected: false) = machine.push(push("subscribe", "a", "1")) else {
            Issue.record("not all back yet"); return
        }
        // A channel dropped meanwhile no longer holds the signal back.
        let dropped = machine.unsubscribe(["c"], makeWaiter: counter.make)
        #expect(!dropped.reconnected)
        guard case .confirmed([], reconnected: true) = machine.push(push("subscribe", "b", "2")) else {
            Issue.record("the last confirmation signals the reconnect"); return
        }
        guard case .confirmed([], reconnected: false) = machine.push(push("subscribe", "b", "2")) else {
            Issue.record("signalled once"); return
        }
    }

    @Test func aReconnectWithNothingWantedSignalsAtOnce() {
        var machine = Subscriber()
        _ = machine.connected(isReconnect: false)
        machine.disconnected()
        let (batches, reconnected) = machine.connected(isReconnect: true)
        #expect(batches.isEmpty && reconnected)
    }

    @Test func timeoutsAndCloseFailTheWaiters() {
        var machine = Subscriber()
        let counter = Counter()
        _ = machine.subscribe(["a"], makeWaiter: counter.make)
        let notConnected = machine.timedOut([.subscribe("a")])
        #expect(notConnected.waiters == [1])
        guard case .unavailable = notConnected.error else { Issue.record("not connected: unavailable"); return }
        #expect(machine.channels == ["a"], "a channel stays wanted after its wait timed out")
        _ = machine.connected(isReconnect: false)
        _ = machine.subscribe(["b"], makeWaiter: counter.make)
        let connected = machine.timedOut([.subscribe("b")])
        #expect(connected.waiters == [2] && connected.error == .timeout)
        _ = machine.subscribe(["c"], makeWaiter: counter.make)
        let result7 = machine.close()
        #expect(result7 == [3])
        guard case .done(.shutdown) = machine.subscribe(["d"], makeWaiter: counter.make).0 else {
            Issue.record("closed refuses"); return
        }
    }
    @Test func anErrorReplyAnswersTheOldestCommandInFlightOnly() {
        var machine = Subscriber()
        let counter = Counter()
        _ = machine.connected(isReconnect: false)
        _ = machine.subscribe(["a"], makeWaiter: counter.make)  // 1
        _ = machine.subscribe(["b"], makeWaiter: counter.make)  // 2
        #expect(machine.healthCheck() == (ping: true, stale: false))
        #expect(machine.commandsInFlight == 3)
        // Redis answers in order: the error is the first SUBSCRIBE's, never the second's or the PING's.
        guard case .refused([1], channels: ["a"], error: "NOPERM no", reconnected: false) = machine.push(.error("NOPERM no")) else {
            Issue.record("the error fails the first subscribe's waiter"); return
        }
        guard case .confirmed([2], reconnected: false) = machine.push(push("subscribe", "b", "1")) else {
            Issue.record("the second subscribe is still confirmed"); return
        }
        guard case .none = machine.push(push("pong", "")) else { Issue.record("the pong answers the ping"); return }
        #expect(machine.commandsInFlight == 0)
        // Answered: the next health check pings again instead of finding the link stale.
        #expect(machine.healthCheck() == (ping: true, stale: false))
        #expect(machine.healthCheck() == (ping: false, stale: true))
    }

    @Test func shardedModeSendsOneSlotPerCommandAndReportsDroppedChannels() {
        var machine = Subscriber(mode: .sharded)
        let counter = Counter()
        _ = machine.connected(isReconnect: false)
        // "{x}a" and "{x}b" share a slot; "other" has its own.
        let (action, _) = machine.subscribe(["{x}a", "other", "{x}b"], makeWaiter: counter.make)
        guard case .wait(let batches, _) = action else { Issue.record("sent"); return }
        #expect(batches.map { Set($0) }.sorted { $0.count > $1.count } == [["{x}a", "{x}b"], ["other"]])
        for channel in ["{x}a", "{x}b", "other"] { _ = machine.push(push("ssubscribe", channel, "1")) }
        guard case .message(channel: "other", _) = machine.push(push("smessage", "other", "hi")) else {
            Issue.record("smessage passes"); return
        }
        // Asked for: a confirmation. Not asked for (the slot moved): the channel is handed back.
        _ = machine.unsubscribe(["{x}a"], makeWaiter: counter.make)
        guard case .confirmed = machine.push(push("sunsubscribe", "{x}a", "2")) else { Issue.record("confirmed"); return }
        guard case .dropped(["other"]) = machine.push(push("sunsubscribe", "other", "1")) else {
            Issue.record("an unsolicited sunsubscribe hands the channel back"); return
        }
        #expect(machine.channels == ["{x}b"])
        // A MOVED for a subscribe hands its channels back too.
        _ = machine.subscribe(["moved"], makeWaiter: counter.make)
        guard case .refused(_, channels: ["moved"], error: let error, _) = machine.push(.error("MOVED 1 127.0.0.1:7001")) else {
            Issue.record("refused"); return
        }
        #expect(error.hasPrefix("MOVED"))
        machine.forget(["moved"])
        #expect(machine.channels == ["{x}b"])
    }

    @Test func subscribeUnsubscribeSubscribeEndsSubscribedWhateverTheRepliesDo() {
        var machine = Subscriber()
        let counter = Counter()
        _ = machine.connected(isReconnect: false)
        var sent: [String] = []
        for round in 0..<50 {
            if case .wait(let batches, _) = machine.subscribe(["c"], makeWaiter: counter.make).0, !batches.isEmpty { sent.append("S") }
            if round % 2 == 0, case .wait(let batches, _) = machine.unsubscribe(["c"], makeWaiter: counter.make).action, !batches.isEmpty {
                sent.append("U")
            }
        }
        // Whatever the interleaving, the last command sent for a wanted channel is a subscribe.
        #expect(machine.channels == ["c"] && sent.last == "S")
        for command in sent { _ = machine.push(push(command == "S" ? "subscribe" : "unsubscribe", "c", "1")) }
        #expect(machine.commandsInFlight == 0)
    }
}

extension RedisConnectionStateMachine where Channel == RedisStateMachineTests.FakeChannel {
    mutating func connectSucceeded(_ channel: Channel) -> ConnectedAction {
        connectSucceeded(channel, id: ObjectIdentifier(channel))
    }

    mutating func channelClosed(_ channel: Channel, endpoint: String) -> DownAction {
        channelClosed(id: ObjectIdentifier(channel), endpoint: endpoint)
    }
}
