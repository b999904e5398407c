import PresenceCore
import Metrics
import Redis

extension RedisKeys {
    /// What the entries of an outbox stream count for, in bytes (``WebhookSettings/storedSize(_:)`` of each), kept
    /// beside it in its slot by the scripts that write and acknowledge its entries.
    public static func webhookOutboxBytes(bucket: Int, target: String) -> String { webhookOutbox(bucket: bucket, target: target) + ":bytes" }
}

/// ``WebhookOutboxStorage`` in Redis Streams: per receiver, ``RedisKeys/spreadBuckets`` streams
/// (`webhooks:{<tag>}:<target>`, a channel's stream picked like its index bucket) with the consumer group `delivery`,
/// a lease key per stream naming the worker that sends it, a counter of delivered events and a count of the bytes its
/// entries take beside it. Every key of one stream shares its hash tag, so each script stays in one slot of a Redis
/// Cluster.
///
/// Both bounds are kept by the script that writes an entry (`webhook_append.lua`, the occupancy scripts): at most
/// ``WebhookSettings/outboxMax`` entries, counting for at most ``WebhookSettings/outboxEntryBudget`` bytes, the oldest
/// dropped first. An event larger than ``WebhookSettings/maxEventBytes`` is not written at all, and counted in
/// `webhook_events_oversized_total{target}`.
public struct RedisWebhookOutbox: WebhookOutboxStorage {
    static let group = "delivery"
    let redis: RedisClient
    let settings: WebhookSettings

    public init(redis: RedisClient, settings: WebhookSettings) {
        self.redis = redis
        self.settings = settings
    }

    public var shards: Int { RedisKeys.spreadBuckets }

    /// The bounds the writing scripts take: most entries, most bytes, largest event.
    var boundArguments: [String] { [String(settings.outboxMax), String(settings.outboxEntryBudget), String(settings.maxEventBytes)] }

    /// The `webhook_append.lua` calls for `events`: one per event and receiver that wants it. Events of the service's
    /// internal `#` channels are never written (``WebhookEvent/isInternal(_:)``), nor events larger than
    /// ``WebhookSettings/maxEventBytes`` (counted per receiver in `webhook_events_oversized_total`).
    public func appendCalls(for events: [WebhookEvent]) -> [RedisScriptCall] {
        guard settings.enabled else { return [] }
        var calls: [RedisScriptCall] = []
        for event in events where !WebhookEvent.isInternal(event.channel) {
            let targets = settings.targets(for: event.name)
            guard !targets.isEmpty else { continue }
            let bucket = RedisKeys.spreadBucket(of: event.channel)
            let text = event.json.serialized
            if text.utf8.count > settings.maxEventBytes {
                for target in targets {
                    Counter(label: "webhook_events_oversized_total", dimensions: [("target", target.id)]).increment()
                }
                continue
            }
            for target in targets {
                calls.append(RedisScriptCall(
                    Scripts.webhookAppend,
                    keys: [RedisKeys.webhookOutbox(bucket: bucket, target: target.id), RedisKeys.webhookOutboxBytes(bucket: bucket, target: target.id)],
                    arguments: boundArguments + [text]
                ))
            }
        }
        return calls
    }

    /// ``appendCalls(for:)`` as commands for a caller's own pipeline (every connection has the scripts loaded);
    /// empty when no receiver wants any of them.
    public func appendCommands(for events: [WebhookEvent]) -> [RedisCommand] {
        appendCalls(for: events).map { $0.script.evalsha(keys: $0.keys, arguments: $0.arguments) }
    }

    public func append(_ events: [WebhookEvent]) async throws {
        let calls = appendCalls(for: events)
        guard !calls.isEmpty else { return }
        let replies = try await redis.run(calls)
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
    }

    public func prepare(_ target: WebhookTarget) async throws {
        let replies = try await redis.pipeline((0..<shards).map {
            RedisCommand("XGROUP", "CREATE", RedisKeys.webhookOutbox(bucket: $0, target: target.id), Self.group, "0", "MKSTREAM")
        })
        if let message = replies.lazy.compactMap(\.errorMessage).first(where: { !$0.hasPrefix("BUSYGROUP") }) {
            throw RedisError.server(message)
        }
    }

    public func lease(_ target: WebhookTarget, owner: String, ttl: Duration) async throws -> Set<Int> {
        let replies = try await redis.run((0..<shards).map {
            RedisScriptCall(
                Scripts.webhookLease, keys: [RedisKeys.webhookLease(bucket: $0, target: target.id), RedisKeys.webhookOutbox(bucket: $0, target: target.id)],
                arguments: [owner, String(ttl.milliseconds)]
            )
        })
        return Set(replies.indices.filter { replies[$0].int == 1 })
    }

    public func release(_ target: WebhookTarget, owner: String, shards: Set<Int>) async throws {
        guard !shards.isEmpty else { return }
        _ = try await redis.run(shards.map {
            RedisScriptCall(Scripts.webhookRelease, keys: [RedisKeys.webhookLease(bucket: $0, target: target.id)], arguments: [owner])
        })
    }

    public func claimPending(_ target: WebhookTarget, shard: Int, owner: String, count: Int) async throws -> (entries: [WebhookEntry], complete: Bool) {
        // `XAUTOCLAIM key group owner 0 0-0`: every pending entry from the start, whoever held it; the caller holds
        // the shard's lease, so no one else is sending them.
        let reply = try await redis.send(RedisCommand(
            "XAUTOCLAIM", RedisKeys.webhookOutbox(bucket: shard, target: target.id), Self.group, owner, "0", "0-0", "COUNT", String(count)
        ))
        if let message = reply.errorMessage { throw RedisError.server(message) }
        // [next cursor ("0-0": the whole pending list was scanned), entries, ids dropped from the stream meanwhile].
        guard let parts = reply.array, parts.count >= 2 else { return ([], true) }
        return (Self.entries(parts[1], shard: shard), parts[0].string == "0-0")
    }

    public func readNew(_ target: WebhookTarget, shards: [Int], owner: String, count: Int) async throws -> [WebhookEntry] {
        guard !shards.isEmpty else { return [] }
        let replies = try await redis.pipeline(shards.map {
            RedisCommand(
                "XREADGROUP", "GROUP", Self.group, owner, "COUNT", String(count), "STREAMS",
                RedisKeys.webhookOutbox(bucket: $0, target: target.id), ">"
            )
        })
        var entries: [WebhookEntry] = []
        for (shard, reply) in zip(shards, replies) {
            if let message = reply.errorMessage { throw RedisError.server(message) }
            // [[key, [[id, [field, value]], ...]]] or nil.
            guard let stream = reply.array?.first?.array, stream.count == 2 else { continue }
            entries += Self.entries(stream[1], shard: shard)
        }
        return entries
    }

    public func acknowledge(_ target: WebhookTarget, _ entries: [WebhookEntry]) async throws {
        guard !entries.isEmpty else { return }
        var byShard: [Int: [String]] = [:]
        for entry in entries { byShard[entry.shard, default: []].append(entry.id) }
        let replies = try await redis.run(byShard.map { shard, ids in
            RedisScriptCall(Scripts.webhookAck, keys: [
                RedisKeys.webhookOutbox(bucket: shard, target: target.id), RedisKeys.webhookDelivered(bucket: shard, target: target.id),
                RedisKeys.webhookOutboxBytes(bucket: shard, target: target.id),
            ], arguments: ids)
        })
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
    }

    public func backlog(_ target: WebhookTarget) async throws -> (waiting: Int, dropped: Int) {
        let replies = try await redis.run((0..<shards).map {
            RedisScriptCall(Scripts.webhookBacklog, keys: [
                RedisKeys.webhookOutbox(bucket: $0, target: target.id), RedisKeys.webhookDelivered(bucket: $0, target: target.id),
            ], arguments: [])
        })
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
        return replies.reduce((0, 0)) { total, reply in
            let pair = reply.array ?? []
            return (total.0 + (pair.first?.int ?? 0), total.1 + (pair.last?.int ?? 0))
        }
    }

    /// `[[id, [field, value, ...]], ...]` as entries; an entry dropped meanwhile comes as `[id, nil]` and is skipped.
    static func entries(_ value: RESPValue, shard: Int) -> [WebhookEntry] {
        (value.array ?? []).compactMap { item in
            guard let pair = item.array, pair.count == 2, let id = pair[0].string, let fields = pair[1].array else { return nil }
            var index = 0
            while index + 1 < fields.count {
                if fields[index].string == "e", let event = fields[index + 1].string { return WebhookEntry(shard: shard, id: id, event: event) }
                index += 2
            }
            return nil
        }
    }
}
