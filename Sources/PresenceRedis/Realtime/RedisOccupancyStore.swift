import PresenceCore
import Redis

/// ``OccupancyStorage`` in Redis: `pusher:channel:{<channel>}:sockets` and the live-channel index `pusher:channels:{…}`
/// (spread over ``RedisKeys/spreadBuckets`` keys by channel name), sorted sets scored by expiry (`occupancy_touch.lua`,
/// `occupancy_refresh.lua`, `occupancy_remove.lua`, `channel_index_touch.lua`, `expiring_members.lua`); a channel's
/// transitions are decided in its own slot.
///
/// With webhooks on, `channel_occupied` / `channel_vacated` go to the receivers' outbox streams (in the same slot) in the
/// very script that decides them: never one without the other.
public struct RedisOccupancyStore: OccupancyStorage {
    let redis: RedisClient
    let webhooks: WebhookSettings
    /// The receivers that want occupancy events, with which ones (`o`: occupied, `v`: vacated).
    let receivers: [(target: WebhookTarget, flags: String)]

    public init(redis: RedisClient, webhooks: WebhookSettings = WebhookSettings()) {
        self.redis = redis
        self.webhooks = webhooks
        self.receivers = webhooks.targets.compactMap { target in
            let flags = (target.accepts(.channelOccupied) ? "o" : "") + (target.accepts(.channelVacated) ? "v" : "")
            return flags.isEmpty ? nil : (target, flags)
        }
    }

    /// A channel's socket set, then its receivers' outbox streams, each followed by its byte count: none for the
    /// service's internal `#` channels (`#signed-in`, `#server-to-user-<id>`), which send no webhooks
    /// (``WebhookEvent/isInternal(_:)``).
    func keys(_ channel: String) -> [String] {
        let sockets = RedisKeys.pusherChannelSockets(channel)
        guard !WebhookEvent.isInternal(channel) else { return [sockets] }
        let bucket = RedisKeys.spreadBucket(of: channel)
        return [sockets] + receivers.flatMap {
            [RedisKeys.webhookOutbox(bucket: bucket, target: $0.target.id), RedisKeys.webhookOutboxBytes(bucket: bucket, target: $0.target.id)]
        }
    }

    /// The text of the webhook event `name` on `channel` the occupancy scripts write (``WebhookEvent/json``): the
    /// scripts pick among the candidates, they build none. `""` for the service's internal channels, which send none.
    static func eventText(_ name: WebhookEvent.Name, channel: String) -> String {
        WebhookEvent.isInternal(channel) ? "" : WebhookEvent(name, channel: channel).json.serialized
    }

    /// The outbox bounds (entries, bytes, largest event: see ``RedisWebhookOutbox``), then each receiver's flags.
    var webhookArguments: [String] {
        [String(webhooks.outboxMax), String(webhooks.outboxEntryBudget), String(webhooks.maxEventBytes)] + receivers.map(\.flags)
    }

    public func touch(_ subscriptions: [(channel: String, socket: String)], ttl: Duration) async throws -> [OccupancyChange] {
        guard !subscriptions.isEmpty else { return [] }
        let ms = String(ttl.milliseconds)
        var calls: [RedisScriptCall] = []
        var channels = Set<String>()
        for entry in subscriptions {
            calls.append(RedisScriptCall(
                Scripts.occupancyTouch, keys: keys(entry.channel),
                arguments: [entry.socket, ms, Self.eventText(.channelOccupied, channel: entry.channel), Self.eventText(.channelVacated, channel: entry.channel)]
                    + webhookArguments
            ))
            channels.insert(entry.channel)
        }
        for channel in channels {
            calls.append(RedisScriptCall(
                Scripts.channelIndexTouch, keys: [RedisKeys.pusherChannels(bucket: RedisKeys.spreadBucket(of: channel))], arguments: [channel, ms]
            ))
        }
        let replies = try await redis.run(calls)
        var changes: [OccupancyChange] = []
        for (entry, reply) in zip(subscriptions, replies) {
            // 1: first subscriber; 2: the lapsed ones were never announced gone: vacated, then occupied again.
            switch reply.int {
            case 1: changes.append(OccupancyChange(channel: entry.channel, occupied: true))
            case 2: changes += [OccupancyChange(channel: entry.channel, occupied: false), OccupancyChange(channel: entry.channel, occupied: true)]
            default: break
            }
        }
        return changes
    }

    /// One `occupancy_refresh.lua` call per channel (its sockets set and its index bucket share a slot).
    public func refresh(_ subscriptions: [(channel: String, socket: String)], ttl: Duration) async throws -> [Int] {
        guard !subscriptions.isEmpty else { return [] }
        var byChannel: [String: [Int]] = [:]
        var order: [String] = []
        for (index, entry) in subscriptions.enumerated() {
            if byChannel[entry.channel] == nil { order.append(entry.channel) }
            byChannel[entry.channel, default: []].append(index)
        }
        let ms = String(ttl.milliseconds)
        let replies = try await redis.run(order.map { channel in
            RedisScriptCall(
                Scripts.occupancyRefresh,
                keys: [RedisKeys.pusherChannelSockets(channel), RedisKeys.pusherChannels(bucket: RedisKeys.spreadBucket(of: channel))],
                arguments: [ms, channel] + byChannel[channel]!.map { subscriptions[$0].socket }
            )
        })
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
        var lapsed: [Int] = []
        for (channel, reply) in zip(order, replies) {
            let flags = reply.array ?? []
            for (position, index) in byChannel[channel]!.enumerated() where flags.count <= position || flags[position].int != 1 {
                lapsed.append(index)
            }
        }
        return lapsed.sorted()
    }

    public func remove(channel: String, socket: String) async throws -> Bool {
        // Read and removed in one script; `ZREM` alone could not say whether the channel is now empty.
        try await redis.run(
            Scripts.occupancyRemove, keys: keys(channel), arguments: [socket, Self.eventText(.channelVacated, channel: channel)] + webhookArguments
        ).int == 1
    }

    /// Reads the lapsed entries of every bucket of the live-channel index, settles each channel (`occupancy_settle.lua`:
    /// vacated when every subscription lapsed) and only then drops the entries not refreshed meanwhile, so a worker
    /// that dies in between leaves them for the next pass, and the settle, atomic per channel, announces once.
    public func settleLapsed(limit: Int) async throws -> [String] {
        let perBucket = String(max(1, limit / RedisKeys.spreadBuckets))
        let lapsed = try await redis.run((0..<RedisKeys.spreadBuckets).map {
            RedisScriptCall(Scripts.expiringLapsed, keys: [RedisKeys.pusherChannels(bucket: $0)], arguments: [perBucket])
        })
        if let message = lapsed.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
        var entries: [(bucket: Int, channel: String, expiry: String)] = []
        for (bucket, reply) in lapsed.enumerated() {
            let flat = reply.array ?? []
            for index in stride(from: 0, to: flat.count - 1, by: 2) {
                guard let channel = flat[index].string, let expiry = flat[index + 1].string else { continue }
                entries.append((bucket, channel, expiry))
            }
        }
        guard !entries.isEmpty else { return [] }
        let settled = try await redis.run(entries.map {
            RedisScriptCall(Scripts.occupancySettle, keys: keys($0.channel), arguments: [Self.eventText(.channelVacated, channel: $0.channel)] + webhookArguments)
        })
        if let message = settled.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
        var forget: [Int: [String]] = [:]
        for entry in entries { forget[entry.bucket, default: []] += [entry.channel, entry.expiry] }
        _ = try await redis.run(forget.map {
            RedisScriptCall(Scripts.expiringForget, keys: [RedisKeys.pusherChannels(bucket: $0.key)], arguments: $0.value)
        })
        return zip(entries, settled).compactMap { $1.int == 1 ? $0.channel : nil }
    }

    public func liveChannels() async throws -> [String] {
        let replies = try await redis.run((0..<RedisKeys.spreadBuckets).map {
            RedisScriptCall(Scripts.expiringMembers, keys: [RedisKeys.pusherChannels(bucket: $0)], arguments: [])
        })
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
        return replies.flatMap { ($0.array?.last?.array ?? []).compactMap(\.string) }.sorted()
    }

    public func counts(_ channels: [String], users: Bool) async throws -> [(subscriptions: Int, users: Int?)] {
        guard !channels.isEmpty else { return [] }
        var calls = channels.map { RedisScriptCall(Scripts.expiringMembers, keys: [RedisKeys.pusherChannelSockets($0)], arguments: []) }
        if users {
            calls += channels.map { RedisScriptCall(Scripts.presenceCount, keys: [RedisKeys.roomMembers(ChannelPresence.room(for: $0).id)], arguments: []) }
        }
        let replies = try await redis.run(calls)
        return channels.indices.map { index in
            (replies[index].array?.first?.int ?? 0, users ? (replies[channels.count + index].int ?? 0) : nil)
        }
    }
}
