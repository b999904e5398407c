import PresenceCore
import Redis

/// ``SupportWaitingStorage`` in Redis: each ticket's episode in `room:{ticket_<id>}:waiting` (`support_waiting.lua`,
/// on the ticket's slot, reading its meta, members and states), and the index `support:waiting:{<tag>}` over
/// ``RedisKeys/spreadBuckets`` buckets (`lease_index.lua`), on other slots than the tickets: so a ticket is
/// registered there before each step, and the index is only a list of hints the watcher checks and prunes.
public struct RedisSupportWaitingStore: SupportWaitingStorage {
    let redis: RedisClient

    public init(redis: RedisClient) {
        self.redis = redis
    }

    func step(room: String, mode: String, after: Duration) -> RedisScriptCall {
        RedisScriptCall(
            Scripts.supportWaiting,
            keys: [RedisKeys.roomMeta(room), RedisKeys.roomMembers(room), RedisKeys.roomStates(room), RedisKeys.roomWaiting(room)],
            arguments: [mode, String(after.milliseconds)]
        )
    }

    static func answer(_ reply: RESPValue) throws -> WaitingAnswer {
        if let message = reply.errorMessage { throw RedisError.server(message) }
        guard let v = reply.array, v.count == 7, let status = v[0].string.flatMap(WaitingAnswer.Status.init(rawValue:)),
              let since = v[1].int64, let wait = v[2].int64, let notified = v[3].int, let now = v[6].int64 else {
            throw RedisError.protocolError("unexpected support_waiting reply \(reply)")
        }
        let customer = v[4].string ?? "", assigned = v[5].string ?? ""
        return WaitingAnswer(
            status: status, since: since, waitMs: wait, notified: notified == 1,
            customer: customer.isEmpty ? nil : customer, assignedAgentId: assigned.isEmpty ? nil : assigned, now: now
        )
    }

    public func sync(room: String, after: Duration) async throws -> WaitingAnswer {
        let index = RedisKeys.supportWaiting(of: room)
        try await redis.run(Scripts.leaseIndex, keys: [index], arguments: ["register", room, String(after.milliseconds)])
        let answer = try Self.answer(try await redis.run([step(room: room, mode: "sync", after: after)])[0])
        if answer.status == .started {
            // The exact time (register put one no earlier); an entry with no episode is dropped by the watcher.
            try await redis.send(RedisCommand("ZADD", index, String(answer.since + after.milliseconds), room))
        }
        return answer
    }

    public func register(room: String, after: Duration) async throws {
        try await redis.run(Scripts.leaseIndex, keys: [RedisKeys.supportWaiting(of: room)], arguments: ["register", room, String(after.milliseconds)])
    }

    public func due(limit: Int, lease: Duration) async throws -> [DueWaiting] {
        let replies = try await redis.run((0..<RedisKeys.spreadBuckets).map { bucket in
            RedisScriptCall(Scripts.leaseIndex, keys: [RedisKeys.supportWaiting(bucket: bucket)],
                            arguments: ["due", String(limit), String(lease.milliseconds)])
        })
        var due: [DueWaiting] = []
        for reply in replies {
            if let message = reply.errorMessage { throw RedisError.server(message) }
            guard let pairs = reply.array else { throw RedisError.protocolError("unexpected lease_index reply \(reply)") }
            var index = 0
            while index + 1 < pairs.count {
                if let room = pairs[index].string, let until = pairs[index + 1].int64 {
                    due.append(DueWaiting(room: room, leasedUntil: until))
                }
                index += 2
            }
        }
        return due
    }

    public func notify(_ due: DueWaiting, after: Duration) async throws -> WaitingAnswer {
        let answer = try Self.answer(try await redis.run([step(room: due.room, mode: "notify", after: after)])[0])
        let next: String
        switch answer.status {
        case .none, .attended, .ended: next = "drop"
        case .notify: next = "inf"
        case .started, .waiting: next = answer.notified ? "inf" : String(answer.since + after.milliseconds)
        }
        try await redis.run(
            Scripts.leaseIndex, keys: [RedisKeys.supportWaiting(of: due.room)],
            arguments: ["settle", due.room, String(due.leasedUntil), next]
        )
        return answer
    }

    public func queue() async throws -> [(room: String, answer: WaitingAnswer)] {
        let listed = try await redis.pipeline((0..<RedisKeys.spreadBuckets).map {
            RedisCommand("ZRANGE", RedisKeys.supportWaiting(bucket: $0), "0", "-1")
        })
        var rooms: [String] = []
        for reply in listed {
            if let message = reply.errorMessage { throw RedisError.server(message) }
            rooms += (reply.array ?? []).compactMap(\.string)
        }
        guard !rooms.isEmpty else { return [] }
        // `read` changes nothing: an entry whose ticket has no episode is left for the watcher to drop.
        let replies = try await redis.run(rooms.map { step(room: $0, mode: "read", after: .seconds(0)) })
        var out: [(room: String, answer: WaitingAnswer)] = []
        for (room, reply) in zip(rooms, replies) {
            let answer = try Self.answer(reply)
            if answer.status == .waiting { out.append((room, answer)) }
        }
        return out
    }
}
