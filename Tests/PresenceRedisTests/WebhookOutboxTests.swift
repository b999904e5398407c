import Foundation
import Logging
@testable import PresenceCore
@testable import PresenceRedis
import Redis
import Synchronization
import Testing
import TestSupport

/// The webhook outbox and the occupancy transitions behind it, against a real `redis-server`: each transition announced
/// once, the outbox per receiver and in order, leases, claims of a dead owner's events, the bound, and the dispatcher's
/// retries (with a sender of our own that fails on demand).
@Suite("Webhook outbox")
struct WebhookOutboxTests {
    func client() throws -> RedisClient { RedisClient(configuration: try SharedRedis.configuration()) }

    func settings(_ targets: [WebhookTarget], max: Int = 1000) -> WebhookSettings {
        var settings = WebhookSettings()
        settings.targets = targets
        settings.outboxMax = max
        settings.lease = .seconds(2)
        settings.pollInterval = .milliseconds(20)
        settings.maxBackoff = .milliseconds(100)
        return settings
    }

    func target(_ events: Set<WebhookEvent.Name>? = nil) -> WebhookTarget {
        WebhookTarget(url: "http://127.0.0.1:9/\(uniquePrefix("hook"))", events: events)
    }

    @Test func occupancyTransitionsAreAnnouncedOnceEach() async throws {
        let redis = try client()
        let store = RedisOccupancyStore(redis: redis)
        let channel = uniquePrefix("occ")
        let ttl = Duration.seconds(30)
        #expect(try await store.touch([(channel, "s1")], ttl: ttl) == [OccupancyChange(channel: channel, occupied: true)])
        #expect(try await store.touch([(channel, "s2"), (channel, "s1")], ttl: ttl).isEmpty, "a refresh and a second subscriber change nothing")
        #expect(try await store.remove(channel: channel, socket: "s1") == false)
        #expect(try await store.remove(channel: channel, socket: "s1") == false, "removing twice changes nothing")
        #expect(try await store.remove(channel: channel, socket: "s2") == true)
        #expect(try await store.remove(channel: channel, socket: "s2") == false)
        // Subscriptions that lapse: the settle announces the vacancy once, however many workers settle.
        // (The live-channel index key itself lasts twice the TTL: settled well within that, as the hub does.)
        #expect(try await store.touch([(channel, "s3")], ttl: .milliseconds(400)).count == 1)
        try await Task.sleep(for: .milliseconds(500))
        // Two workers settling side by side, until nothing lapsed is left (the shared Redis holds other tests' channels).
        var settled: [String] = []
        for _ in 0..<100 {
            async let first = store.settleLapsed(limit: 1000)
            async let second = store.settleLapsed(limit: 1000)
            let round = try await first + second
            settled += round
            if round.isEmpty { break }
        }
        // Once at most between the two; another suite's hub settling the shared Redis at the same moment may have
        // taken it (seen in a CI run), and then neither of these two may announce it again.
        #expect(settled.filter { $0 == channel }.count <= 1, "\(settled.filter { $0 == channel })")
        #expect(try await store.settleLapsed(limit: 1000).contains(channel) == false)
        // A lapsed subscriber found by the next touch: vacated, then occupied again.
        _ = try await store.touch([(channel, "s4")], ttl: .milliseconds(100))
        try await Task.sleep(for: .milliseconds(250))
        #expect(try await store.touch([(channel, "s5")], ttl: ttl) == [
            OccupancyChange(channel: channel, occupied: false), OccupancyChange(channel: channel, occupied: true),
        ])
        _ = try await store.remove(channel: channel, socket: "s5")
        await redis.close()
    }

    @Test func eventsWaitPerReceiverInOrderUntilAcknowledgedAndADeadOwnersAreClaimed() async throws {
        let redis = try client()
        let all = target(), occupiedOnly = target([.channelOccupied])
        let outbox = RedisWebhookOutbox(redis: redis, settings: settings([all, occupiedOnly]))
        try await outbox.prepare(all)
        try await outbox.prepare(occupiedOnly)
        let channel = uniquePrefix("ch")
        let shard = RedisKeys.spreadBucket(of: channel)
        let events = (0..<5).map { WebhookEvent(.clientEvent, channel: channel, fields: ["data": .string("\($0)")]) }
        try await outbox.append([WebhookEvent(.channelOccupied, channel: channel)] + events)
        #expect(try await outbox.backlog(all).waiting == 6)
        #expect(try await outbox.backlog(occupiedOnly).waiting == 1, "the filter applies when events are written")

        // One owner at a time per shard.
        let a = try await outbox.lease(all, owner: "a", ttl: .seconds(30))
        #expect(a.count == outbox.shards)
        #expect(try await outbox.lease(all, owner: "b", ttl: .seconds(30)).isEmpty)
        let read = try await outbox.readNew(all, shards: [shard], owner: "a", count: 4)
        #expect(read.map(\.event) == ([WebhookEvent(.channelOccupied, channel: channel)] + events.prefix(3)).map(\.json.serialized))
        // "a" dies holding them: once its lease is gone, "b" takes the shard and claims them first, in order.
        try await outbox.release(all, owner: "a", shards: a)
        #expect(try await outbox.lease(all, owner: "b", ttl: .seconds(30)).contains(shard))
        let claimed = try await outbox.claimPending(all, shard: shard, owner: "b", count: 10)
        #expect(claimed.entries.map(\.id) == read.map(\.id) && claimed.complete)
        try await outbox.acknowledge(all, claimed.entries)
        let rest = try await outbox.readNew(all, shards: [shard], owner: "b", count: 10)
        #expect(rest.map(\.event) == events.suffix(2).map(\.json.serialized))
        try await outbox.acknowledge(all, rest)
        #expect(try await outbox.claimPending(all, shard: shard, owner: "b", count: 10).entries.isEmpty)
        let backlog = try await outbox.backlog(all)
        #expect(backlog.waiting == 0 && backlog.dropped == 0)
        await redis.close()
    }

    @Test func aFullOutboxDropsTheOldestAndCountsThem() async throws {
        let redis = try client()
        let hook = target()
        let outbox = RedisWebhookOutbox(redis: redis, settings: settings([hook], max: 10))
        try await outbox.prepare(hook)
        let channel = uniquePrefix("full")
        let shard = RedisKeys.spreadBucket(of: channel)
        try await outbox.append((0..<25).map { WebhookEvent(.clientEvent, channel: channel, fields: ["data": .string("\($0)")]) })
        let backlog = try await outbox.backlog(hook)
        #expect(backlog.waiting == 10 && backlog.dropped == 15)
        _ = try await outbox.lease(hook, owner: "a", ttl: .seconds(30))
        let kept = try await outbox.readNew(hook, shards: [shard], owner: "a", count: 100)
        #expect(kept.compactMap { JSONValue.parse(Array($0.event.utf8))?["data"]?.string } == (15..<25).map(String.init))
        try await outbox.acknowledge(hook, kept)
        #expect(try await outbox.backlog(hook) == (0, 15))
        // Events handed out, then dropped by newer ones before they were acknowledged: a claim skips them, and says
        // the pending list is done, so the newer ones are read next.
        try await outbox.append((25..<35).map { WebhookEvent(.clientEvent, channel: channel, fields: ["data": .string("\($0)")]) })
        #expect(try await outbox.readNew(hook, shards: [shard], owner: "a", count: 100).count == 10)
        try await outbox.append((35..<45).map { WebhookEvent(.clientEvent, channel: channel, fields: ["data": .string("\($0)")]) })
        let claimed = try await outbox.claimPending(hook, shard: shard, owner: "a", count: 100)
        #expect(claimed.entries.isEmpty && claimed.complete)
        let newer = try await outbox.readNew(hook, shards: [shard], owner: "a", count: 100)
        #expect(newer.compactMap { JSONValue.parse(Array($0.event.utf8))?["data"]?.string } == (35..<45).map(String.init))
        try await outbox.acknowledge(hook, newer)
        #expect(try await outbox.backlog(hook) == (0, 25))
        await redis.close()
    }

    /// `WEBHOOK_OUTBOX_MAX_BYTES`: the stream's count of bytes is what its entries count for, the oldest go when the
    /// count passes the budget, an acknowledgement takes its entries off, an event over an eighth of the bound is never
    /// written, and Redis's own figure (`MEMORY USAGE`) stays within the bound with a batch's worth handed out.
    @Test func theOutboxIsBoundedInBytes() async throws {
        let redis = try client()
        let hook = target()
        var settings = settings([hook])
        settings.outboxMaxBytes = 65536
        settings.batchSize = 10
        #expect(settings.outboxBytesProblem == nil)
        #expect(settings.outboxEntryBudget == 65536 - 16384 - 1536 * 10 && settings.maxEventBytes == 8192)
        let outbox = RedisWebhookOutbox(redis: redis, settings: settings)
        try await outbox.prepare(hook)
        let channel = uniquePrefix("bytes")
        let shard = RedisKeys.spreadBucket(of: channel)
        let stream = RedisKeys.webhookOutbox(bucket: shard, target: hook.id)
        let counter = RedisKeys.webhookOutboxBytes(bucket: shard, target: hook.id)
        func event(_ n: Int, size: Int) -> WebhookEvent {
            WebhookEvent(.clientEvent, channel: channel, fields: ["data": .string("\(n):" + String(repeating: "x", count: size))])
        }
        func kept() async throws -> [String] {
            let reply = try await redis.send(RedisCommand("XRANGE", stream, "-", "+"))
            return RedisWebhookOutbox.entries(reply, shard: shard).map(\.event)
        }
        // 40 events of about 1 KB: the newest that fit the budget are kept, and the count is exactly theirs.
        let sent = (0..<40).map { event($0, size: 1000) }
        for event in sent { try await outbox.append([event]) }
        var texts = try await kept()
        let costs = texts.map { WebhookSettings.storedSize($0.utf8.count) }
        #expect(costs.reduce(0, +) <= settings.outboxEntryBudget)
        #expect(costs.reduce(0, +) + WebhookSettings.storedSize(sent[0].json.serialized.utf8.count) > settings.outboxEntryBudget)
        #expect(texts == sent.suffix(texts.count).map(\.json.serialized), "the newest, in order")
        #expect(try await redis.send(RedisCommand("GET", counter)).string == String(costs.reduce(0, +)))
        #expect(try await outbox.backlog(hook) == (texts.count, 40 - texts.count))
        // A batch handed out and not acknowledged (the receiver is down): Redis's own figure is within the bound.
        _ = try await outbox.lease(hook, owner: "a", ttl: .seconds(30))
        let read = try await outbox.readNew(hook, shards: [shard], owner: "a", count: settings.batchSize)
        #expect(read.count == settings.batchSize)
        for event in (40..<60).map({ event($0, size: 1000) }) { try await outbox.append([event]) }
        let memory = try await redis.send(RedisCommand("MEMORY", "USAGE", stream, "SAMPLES", "0")).int ?? .max
        #expect(memory <= settings.outboxMaxBytes, "MEMORY USAGE \(memory)")
        // Too large for the outbox at all: not written, counted.
        try await outbox.append([event(99, size: 9000)])
        #expect(try await kept().last == event(59, size: 1000).json.serialized)
        // Acknowledged: off the count; once the stream is empty, so is the count.
        let claimed = try await outbox.claimPending(hook, shard: shard, owner: "a", count: 100)
        #expect(claimed.entries.isEmpty && claimed.complete, "the batch handed out was dropped meanwhile")
        texts = try await kept()
        let rest = try await outbox.readNew(hook, shards: [shard], owner: "a", count: 100)
        #expect(rest.map(\.event) == texts)
        try await outbox.acknowledge(hook, Array(rest.prefix(3)))
        let left = texts.dropFirst(3).map { WebhookSettings.storedSize($0.utf8.count) }.reduce(0, +)
        #expect(try await redis.send(RedisCommand("GET", counter)).string == String(left))
        try await outbox.acknowledge(hook, Array(rest.dropFirst(3)))
        #expect(try await redis.send(RedisCommand("EXISTS", counter)).int == 0)
        #expect(try await outbox.backlog(hook) == (0, 60 - texts.count))
        await redis.close()
    }

    /// The byte accounting is one function (`Scripts/lib/outbox.lua`), included by every script that writes or
    /// acknowledges outbox entries, and the same as ``WebhookSettings/storedSize(_:)``.
    @Test func everyScriptCountsOutboxBytesTheSameWay() throws {
        let function = "local function outbox_cost(length)"
        for script in [Scripts.webhookAppend, Scripts.webhookAck, Scripts.occupancyTouch, Scripts.occupancyRemove, Scripts.occupancySettle].map(\.script) {
            #expect(script.source.components(separatedBy: function).count == 2, "\(script.name)")
            #expect(!script.source.split(separator: "\n").contains { $0.hasPrefix("--#include") }, "\(script.name)")
        }
        let reference = Scripts.webhookAppend.script.source
        #expect(reference.contains("local per_node = math.min(100, math.max(1, math.floor(4096 / (length + 16))))"))
        #expect(reference.contains("return length + math.floor(length / 4) + 64 + math.ceil(800 / per_node)"))
        // 100 B: 35 to a listpack node; 1000 B: 4; 4000 B and more: one.
        #expect(WebhookSettings.storedSize(100) == 100 + 25 + 64 + 23)
        #expect(WebhookSettings.storedSize(1000) == 1000 + 250 + 64 + 200)
        #expect(WebhookSettings.storedSize(4000) == 4000 + 1000 + 64 + 800)
        #expect(WebhookSettings.storedSize(10) == 10 + 2 + 64 + 8, "at most 100 entries to a node")
    }

    @Test func theDispatcherRetriesUntilTheReceiverTakesABatchAndKeepsTheOrder() async throws {
        let redis = try client()
        let hook = target()
        let settings = settings([hook])
        let outbox = RedisWebhookOutbox(redis: redis, settings: settings)
        let sender = FlakySender(failures: 3)
        let dispatcher = WebhookDispatcher(storage: outbox, sender: sender, settings: settings, owner: "w1", logger: .init(label: "test"))
        let channel = uniquePrefix("disp")
        try await outbox.prepare(hook)
        try await outbox.append((0..<30).map { WebhookEvent(.clientEvent, channel: channel, fields: ["data": .string("\($0)")]) })
        let task = Task { await WebhookCourier(target: hook, dispatcher: dispatcher).run() }
        var received: [String] = []
        // The retries back off (about 4 s for three failures here, more on a busy machine): a deadline, not a count.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            received = sender.events.compactMap { $0["data"]?.string }
            if received.count >= 30 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        task.cancel()
        await task.value
        #expect(sender.attempts >= 4, "three failures, then success")
        #expect(received == (0..<30).map(String.init), "everything once, in order, after the failures")
        #expect(try await outbox.backlog(hook).waiting == 0)
        // Cancelled: its leases were handed back.
        #expect(try await outbox.lease(hook, owner: "w2", ttl: .seconds(1)).count == outbox.shards)
        await redis.close()
    }

    @Test func receiversAreReadFromWebhookURLs() throws {
        let targets = try WebhookTarget.parse("http://a.example/hook, https://b.example/x?t=1|member_added+member_removed")
        #expect(targets.map(\.url) == ["http://a.example/hook", "https://b.example/x?t=1"])
        #expect(targets[0].events == nil && targets[1].events == [.memberAdded, .memberRemoved])
        #expect(targets[1].accepts(.memberAdded) && !targets[1].accepts(.clientEvent))
        #expect(targets[0].id.count == 12 && targets[0].id != targets[1].id)
        #expect(try WebhookTarget.parse("").isEmpty)
        #expect(throws: WebhookConfigurationError.self) { try WebhookTarget.parse("ftp://x.example/") }
        #expect(throws: WebhookConfigurationError.self) { try WebhookTarget.parse("http://x.example/|channel_occupied+nope") }
        #expect(throws: WebhookConfigurationError.self) { try WebhookTarget.parse("http://x.example/,http://x.example/") }
    }

    @Test func internalChannelsWriteNothingToTheOutbox() async throws {
        let redis = try client()
        let hook = target()
        let settings = settings([hook])
        let outbox = RedisWebhookOutbox(redis: redis, settings: settings)
        try await outbox.prepare(hook)
        let store = RedisOccupancyStore(redis: redis, webhooks: settings)
        let user = uniquePrefix("u")
        for channel in ["#server-to-user-\(user)", "#signed-in-\(user)"] {
            // The transitions still happen (the hub counts them), but no webhook event is written for them.
            #expect(try await store.touch([(channel, "s1")], ttl: .seconds(30)).count == 1)
            #expect(try await store.remove(channel: channel, socket: "s1"))
            #expect(try await store.touch([(channel, "s2")], ttl: .milliseconds(50)).count == 1)
        }
        try await Task.sleep(for: .milliseconds(150))
        // Their lapsed subscriptions settled (vacated) by the script the settle runs (not settleLapsed, which would settle
        // other tests' channels in the shared Redis too), given the outbox as if it were an app channel's: the store
        // gives no event text for a # channel, and the script writes nothing without one.
        for channel in ["#server-to-user-\(user)", "#signed-in-\(user)"] {
            let bucket = RedisKeys.spreadBucket(of: channel)
            let settled = try await redis.run(Scripts.occupancySettle, keys: [
                RedisKeys.pusherChannelSockets(channel), RedisKeys.webhookOutbox(bucket: bucket, target: hook.id),
                RedisKeys.webhookOutboxBytes(bucket: bucket, target: hook.id),
            ], arguments: [RedisOccupancyStore.eventText(.channelVacated, channel: channel), String(settings.outboxMax), String(settings.outboxEntryBudget), String(settings.maxEventBytes), "ov"])
            #expect(settled.int == 1)
        }
        #expect(outbox.appendCommands(for: [
            WebhookEvent(.memberAdded, channel: "#signed-in", fields: ["user_id": .string(user)]),
            WebhookEvent(.clientEvent, channel: "#server-to-user-\(user)", fields: ["data": "x"]),
            WebhookEvent(.cacheMiss, channel: "#x"),
        ]).isEmpty)
        #expect(try await outbox.backlog(hook) == (0, 0))
        // An ordinary channel through the same store does write.
        let channel = uniquePrefix("plain")
        _ = try await store.touch([(channel, "s1")], ttl: .seconds(30))
        #expect(try await outbox.backlog(hook).waiting == 1)
        _ = try await store.remove(channel: channel, socket: "s1")
        await redis.close()
    }

    @Test func memberAndClientEventsStandForWebhookEvents() {
        let added = WebhookEvent(broadcast: ChatService.memberEvent(channel: "presence-room-x", user: "ann", action: .joined))
        #expect(added == WebhookEvent(.memberAdded, channel: "presence-room-x", fields: ["user_id": "ann"]))
        let client = WebhookEvent(broadcast: BroadcastEvent(event: "client-typing", channel: "private-a", data: ["k": 1], socketID: "1.2"))
        #expect(client?.json == ["name": "client_event", "channel": "private-a", "event": "client-typing", "data": "{\"k\":1}", "socket_id": "1.2"])
        #expect(WebhookEvent(broadcast: ChatService.memberEvent(channel: "#signed-in", user: "ann", action: .joined)) == nil)
        #expect(WebhookEvent(broadcast: BroadcastEvent(event: "message", channel: "room-a", data: [:])) == nil)
    }
}

/// A receiver that fails its first `failures` attempts, then records what it gets.
final class FlakySender: WebhookSender {
    private let state: Mutex<(failuresLeft: Int, attempts: Int, events: [JSONValue])>

    init(failures: Int) { state = Mutex((failures, 0, [])) }

    var attempts: Int { state.withLock { $0.attempts } }
    var events: [JSONValue] { state.withLock { $0.events } }

    func send(_ body: String, to target: WebhookTarget) async throws {
        try state.withLock { state in
            state.attempts += 1
            if state.failuresLeft > 0 {
                state.failuresLeft -= 1
                throw WebhookDeliveryError.status(503)
            }
            guard case .array(let events)? = JSONValue.parse(Array(body.utf8))?["events"] else { throw WebhookDeliveryError.status(400) }
            state.events += events
        }
    }
}
