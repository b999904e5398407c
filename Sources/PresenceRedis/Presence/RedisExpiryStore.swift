import PresenceCore
import Redis

/// ``ExpiryStorage`` in Redis: the rooms to check in `presence:rooms:{…}` (``RedisKeys/spreadBuckets`` sorted sets,
/// leased with `presence_due.lua`, settled with `presence_settle.lua`); claims with `presence_sweep.lua` (ZREM of
/// expired members, so only one worker gets each; it deletes their presence keys, built from the room's prefix, and in
/// a support room appends each claimed member's interval to its attendance). Each step is one pipelined round trip for
/// every bucket or room.
public struct RedisExpiryStore: ExpiryStorage {
    let redis: RedisClient
    /// An empty room is dropped from the work list when no join registered it for this long: far longer than a join
    /// can take between its registration and its script.
    let keepEmpty: Duration
    /// The intervals a support room's attendance keeps, newest (`SUPPORT_ATTENDANCE_LIMIT`).
    let attendanceLimit: Int

    public init(redis: RedisClient, keepEmpty: Duration = .seconds(60), attendanceLimit: Int = SupportSettings().attendanceLimit) {
        self.redis = redis
        self.keepEmpty = keepEmpty
        self.attendanceLimit = attendanceLimit
    }

    public var bucketCount: Int { RedisKeys.spreadBuckets }

    /// Registers `room` with the sweeper before a member with presence `ttl` enters it (`presence_register.lua`).
    static func registerCall(room: String, ttl: Duration) -> RedisScriptCall {
        let bucket = RedisKeys.spreadBucket(of: room)
        return RedisScriptCall(
            Scripts.presenceRegister,
            keys: [RedisKeys.presenceRooms(bucket: bucket), RedisKeys.presenceRoomsTouched(bucket: bucket)],
            arguments: [room, String(ttl.milliseconds)]
        )
    }

    public func due(limit: Int, lease: Duration) async throws -> [DueRoom] {
        let replies = try await redis.run((0..<bucketCount).map { bucket in
            RedisScriptCall(Scripts.presenceDue, keys: [RedisKeys.presenceRooms(bucket: bucket)],
                            arguments: [String(limit), String(lease.milliseconds)])
        })
        var due: [DueRoom] = []
        for (bucket, reply) in replies.enumerated() {
            if let message = reply.errorMessage { throw RedisError.server(message) }
            guard let v = reply.array, v.count == 2, let pairs = v[1].array else {
                throw RedisError.protocolError("unexpected presence_due reply \(reply)")
            }
            var index = 0
            while index + 1 < pairs.count {
                if let room = pairs[index].string, let until = pairs[index + 1].int {
                    due.append(DueRoom(room: room, bucket: bucket, leasedUntil: Int64(until)))
                }
                index += 2
            }
        }
        return due
    }

    public func claimExpired(rooms: [String]) async throws -> [ExpiredClaim?] {
        guard !rooms.isEmpty else { return [] }
        let replies = try await redis.run(rooms.map { room in
            let attendance = RedisPresenceStore.attendance(room: room, limit: attendanceLimit)
            return RedisScriptCall(
                Scripts.presenceSweep,
                keys: [RedisKeys.roomMeta(room), RedisKeys.roomMembers(room), RedisKeys.roomJoined(room), RedisKeys.roomStates(room),
                       RedisKeys.roomPresencePrefix(room)] + attendance.keys,
                arguments: [attendance.limit]
            )
        })
        return replies.map { reply in
            guard let r = reply.array, r.count == 5, let count = r[0].int, let now = r[3].int, let next = r[4].string else {
                return nil
            }
            return ExpiredClaim(
                users: (r[1].array ?? []).compactMap(\.string), userCount: count, meta: r[2].hashFields,
                claimedAt: Int64(now), nextExpiry: Double(next).map { Int64($0) }
            )
        }
    }

    public func settle(_ settled: [(room: DueRoom, claim: ExpiredClaim)], recheck: Duration) async throws {
        guard !settled.isEmpty else { return }
        var perBucket: [Int: [String]] = [:]
        for (room, claim) in settled {
            perBucket[room.bucket, default: []] += [
                room.room, String(room.leasedUntil), String(claim.claimedAt), claim.nextExpiry.map(String.init) ?? "",
            ]
        }
        let buckets = perBucket.keys.sorted()
        let replies = try await redis.run(buckets.map { bucket in
            RedisScriptCall(
                Scripts.presenceSettle,
                keys: [RedisKeys.presenceRooms(bucket: bucket), RedisKeys.presenceRoomsTouched(bucket: bucket)],
                arguments: [String(keepEmpty.milliseconds), String(recheck.milliseconds)] + perBucket[bucket]!
            )
        })
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
    }

    /// Moves the work list of an older version (`presence:expiries`, one entry per member) into the buckets: each room
    /// named there is registered as due now, then the entries are removed. Safe to run on every start and on several
    /// workers at once.
    public func migrateLegacyIndex() async throws -> Int {
        var moved = 0
        while true {
            let entries = (try await redis.send(RedisCommand("ZRANGE", RedisKeys.legacyPresenceExpiries, "0", "499")).array ?? [])
                .compactMap(\.string)
            guard !entries.isEmpty else { return moved }
            let rooms = Set(entries.compactMap(Self.legacyRoom(ofEntry:)))
            _ = try await redis.run(rooms.sorted().map { Self.registerCall(room: $0, ttl: .zero) })
            try await redis.send(RedisCommand("ZREM", [RedisKeys.legacyPresenceExpiries] + entries))
            moved += entries.count
        }
    }

    /// The room of a legacy entry `<roomId>:<user>`: chat and support room ids have no `:`; a presence channel's room
    /// is `pch:<channel>` and channel names have no `:` either (a user id may contain `:`).
    static func legacyRoom(ofEntry entry: String) -> String? {
        let start = entry.hasPrefix("pch:") ? entry.index(entry.startIndex, offsetBy: 4) : entry.startIndex
        guard let colon = entry[start...].firstIndex(of: ":") else { return nil }
        return String(entry[..<colon])
    }
}
