import Foundation
import PresenceCore
import Redis

/// ``UnseenStorage`` in Redis (#32, `message_unseen`). In the room's slot: the pending notices `room:{<id>}:unseen`,
/// the claimed ones `room:{<id>}:unseen:sending` and the subscriptions `room:{<id>}:watchers` (`unseen_post.lua`,
/// `unseen_watch.lua`, `unseen_claim.lua`); the index `unseen:due:{…}` over ``RedisKeys/spreadBuckets`` buckets
/// (`lease_index.lua`); and, beside the outbox streams of the room's channel, the sent markers `unseen:sent:{…}` that
/// make the outbox write exactly-once (`unseen_send.lua`).
public struct RedisUnseenStore: UnseenStorage {
    let redis: RedisClient
    let webhooks: WebhookSettings

    public init(redis: RedisClient, webhooks: WebhookSettings) {
        self.redis = redis
        self.webhooks = webhooks
    }

    func roomKeys(_ room: String) -> [String] {
        [RedisKeys.roomMeta(room), RedisKeys.roomMembers(room), RedisKeys.roomWatchers(room), RedisKeys.roomUnseen(room)]
    }

    func register(_ room: String, in: Duration) -> RedisScriptCall {
        RedisScriptCall(Scripts.leaseIndex, keys: [RedisKeys.unseenDue(of: room)], arguments: ["register", room, String(`in`.milliseconds)])
    }

    public func posted(room: String, message: ChatMessage, members: [String], grace: Duration) async throws -> Int {
        // Registered before the notices exist (a worker that dies after the post leaves the room in the index), and
        // again after: a watcher that held the room's lease meanwhile may have settled it past the new notices.
        try await check(try await redis.run([register(room, in: grace)]))
        let reply = try await redis.run(
            Scripts.unseenPost, keys: roomKeys(room),
            arguments: [message.id, String(message.timestamp), message.username, String(grace.milliseconds)] + members
        )
        if let error = reply.errorMessage { throw RedisError.server(error) }
        guard let v = reply.array, v.count == 2, let pending = v[0].int else {
            throw RedisError.protocolError("unexpected unseen_post reply \(reply)")
        }
        if pending > 0 { try await check(try await redis.run([register(room, in: grace)])) }
        return pending
    }

    func watchCalls(_ mode: String, _ watches: [RoomWatch], ttl: Duration) -> [RedisScriptCall] {
        var byRoom: [String: [String]] = [:]
        var order: [String] = []
        for watch in watches {
            if byRoom[watch.room] == nil { order.append(watch.room) }
            byRoom[watch.room, default: []] += [watch.user, watch.socket]
        }
        return order.map { room in
            RedisScriptCall(
                Scripts.unseenWatch, keys: [RedisKeys.roomMeta(room), RedisKeys.roomWatchers(room), RedisKeys.roomUnseen(room)],
                arguments: [mode, String(ttl.milliseconds)] + byRoom[room]!
            )
        }
    }

    public func watch(_ watches: [RoomWatch], ttl: Duration) async throws -> Int {
        let replies = try await redis.run(watchCalls("watch", watches, ttl: ttl))
        try check(replies)
        return replies.reduce(0) { $0 + ($1.int ?? 0) }
    }

    public func refresh(_ watches: [RoomWatch], ttl: Duration) async throws {
        try check(try await redis.run(watchCalls("refresh", watches, ttl: ttl)))
    }

    public func unwatch(_ watches: [RoomWatch]) async throws {
        try check(try await redis.run(watchCalls("unwatch", watches, ttl: .seconds(0))))
    }

    public func due(limit: Int, lease: Duration) async throws -> [LeasedRoom] {
        let replies = try await redis.run((0..<RedisKeys.spreadBuckets).map { bucket in
            RedisScriptCall(Scripts.leaseIndex, keys: [RedisKeys.unseenDue(bucket: bucket)],
                            arguments: ["due", String(limit), String(lease.milliseconds)])
        })
        try check(replies)
        var due: [LeasedRoom] = []
        for reply in replies {
            let pairs = reply.array ?? []
            for index in stride(from: 0, to: pairs.count - 1, by: 2) {
                if let room = pairs[index].string, let until = pairs[index + 1].int64 { due.append(LeasedRoom(room: room, leasedUntil: until)) }
            }
        }
        return due
    }

    func claimCall(_ room: String, _ arguments: [String]) -> RedisScriptCall {
        RedisScriptCall(Scripts.unseenClaim, keys: roomKeys(room) + [RedisKeys.roomUnseenSending(room)], arguments: arguments)
    }

    static func claim(_ reply: RESPValue, room: String) throws -> UnseenClaim {
        if let error = reply.errorMessage { throw RedisError.server(error) }
        guard let v = reply.array, v.count == 3, let flat = v[0].array, let suppressed = v[1].int, let next = v[2].int64 else {
            throw RedisError.protocolError("unexpected unseen_claim reply \(reply)")
        }
        var notices: [UnseenNotice] = []
        for index in stride(from: 0, to: flat.count - 1, by: 2) {
            guard let user = flat[index].string, let text = flat[index + 1].string,
                  case .object(let entry)? = JSONValue.parse(Array(text.utf8)),
                  let id = entry["id"]?.string, let at = entry["at"]?.int, let count = entry["count"]?.int else { continue }
            notices.append(UnseenNotice(
                room: room, user: user, messageID: id, messageTime: Int64(at), from: entry["from"]?.string ?? "",
                count: count, lastMessageID: entry["lastId"]?.string ?? id,
                lastMessageTime: Int64(entry["lastAt"]?.int ?? at)
            ))
        }
        return UnseenClaim(notices: notices, suppressed: suppressed, next: next > 0 ? next : nil)
    }

    public func claim(_ room: LeasedRoom, lease: Duration) async throws -> UnseenClaim {
        try Self.claim(try await redis.run([claimCall(room.room, ["claim", String(lease.milliseconds)])])[0], room: room.room)
    }

    public func send(_ notice: UnseenNotice) async throws -> Bool {
        let targets = webhooks.targets(for: .messageUnseen)
        let text = notice.webhookEvent.json.serialized
        let bucket = RedisKeys.spreadBucket(of: notice.channel)
        let reply = try await redis.run(
            Scripts.unseenSend,
            keys: [RedisKeys.unseenSent(channel: notice.channel)] + targets.flatMap {
                [RedisKeys.webhookOutbox(bucket: bucket, target: $0.id), RedisKeys.webhookOutboxBytes(bucket: bucket, target: $0.id)]
            },
            arguments: [notice.marker, text, String(webhooks.outboxMax), String(webhooks.outboxEntryBudget), String(webhooks.maxEventBytes)]
        )
        if let error = reply.errorMessage { throw RedisError.server(error) }
        return reply.int == 1
    }

    public func done(_ notice: UnseenNotice) async throws {
        try check(try await redis.run([claimCall(notice.room, ["done", notice.user, notice.messageID])]))
    }

    public func settle(_ room: LeasedRoom, next: Int64?) async throws {
        let changed = try await redis.run(
            Scripts.leaseIndex, keys: [RedisKeys.unseenDue(of: room.room)],
            arguments: ["settle", room.room, String(room.leasedUntil), next.map(String.init) ?? "drop"]
        )
        if let error = changed.errorMessage { throw RedisError.server(error) }
        guard changed.int == 1 else { return }
        // A post may have registered the room while it was leased (a no-op against the lease's later score) and
        // written its notices after the claim: read the room again and register what it holds now.
        let held = try Self.claim(try await redis.run([claimCall(room.room, ["next"])])[0], room: room.room)
        if let due = held.next, next.map({ due < $0 }) ?? true {
            let reply = try await redis.send(RedisCommand("ZADD", RedisKeys.unseenDue(of: room.room), "LT", String(due), room.room))
            if let error = reply.errorMessage { throw RedisError.server(error) }
        }
    }

    func check(_ replies: [RESPValue]) throws {
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
    }
}
