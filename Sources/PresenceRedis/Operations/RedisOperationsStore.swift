import PresenceCore
import Redis

/// ``OperationsStorage`` in Redis: workers in `workers:{ops}:alive` / `workers:{ops}:info` (`worker_announce.lua`,
/// `worker_list.lua`, on Redis's clock); rooms from the sweeper's work list (`presence:rooms:{…}`, every room with
/// presence) counted with `presence_count.lua`; nodes from `INFO` on every primary.
public struct RedisOperationsStore: OperationsStorage {
    let redis: RedisClient

    public init(redis: RedisClient) {
        self.redis = redis
    }

    public func announce(worker id: String, info: String, ttl: Duration) async throws {
        try await redis.run(
            Scripts.workerAnnounce, keys: [RedisKeys.workersAlive, RedisKeys.workersInfo],
            arguments: [id, info, String(max(0, ttl.milliseconds))]
        )
    }

    public func liveWorkers() async throws -> [(id: String, info: String)] {
        let reply = try await redis.run(Scripts.workerList, keys: [RedisKeys.workersAlive, RedisKeys.workersInfo])
        guard let items = reply.array, items.count % 2 == 0 else {
            throw RedisError.protocolError("unexpected worker_list reply \(reply)")
        }
        var workers: [(id: String, info: String)] = []
        for index in stride(from: 0, to: items.count, by: 2) {
            guard let id = items[index].string, let info = items[index + 1].string else { continue }
            workers.append((id, info))
        }
        return workers.sorted { $0.id < $1.id }
    }

    public func busiestRooms(limit: Int, scan: Int) async throws -> RoomOccupancyReport {
        let perBucket = max(1, scan / RedisKeys.spreadBuckets)
        let lists = try await redis.pipeline((0..<RedisKeys.spreadBuckets).map {
            RedisCommand("ZRANGE", RedisKeys.presenceRooms(bucket: $0), "0", String(perBucket - 1))
        })
        var rooms: [String] = []
        for reply in lists {
            if let message = reply.errorMessage { throw RedisError.server(message) }
            rooms += (reply.array ?? []).compactMap(\.string)
        }
        guard !rooms.isEmpty else { return RoomOccupancyReport(rooms: [], roomsScanned: 0, occupiedRooms: 0, present: 0) }
        let counts = try await redis.run(rooms.map {
            RedisScriptCall(Scripts.presenceCount, keys: [RedisKeys.roomMembers($0)], arguments: [])
        })
        var occupied: [RoomOccupancy] = []
        for (room, reply) in zip(rooms, counts) {
            if let message = reply.errorMessage { throw RedisError.server(message) }
            if let count = reply.int, count > 0 { occupied.append(RoomOccupancy(id: room, userCount: count)) }
        }
        occupied.sort { $0.userCount != $1.userCount ? $0.userCount > $1.userCount : $0.id < $1.id }
        return RoomOccupancyReport(
            rooms: Array(occupied.prefix(limit)), roomsScanned: rooms.count, occupiedRooms: occupied.count, present: occupied.reduce(0) { $0 + $1.userCount }
        )
    }

    public func nodes() async throws -> [RedisNodeStats] {
        let replies = try await redis.sendToEveryPrimary(RedisCommand("INFO"))
        return replies.compactMap { node, reply in
            guard let text = reply.string else { return nil }
            let fields = Self.infoFields(text)
            let role: String
            if redis.isCluster {
                role = fields["role"] == "slave" ? "replica" : "primary"
            } else {
                role = fields["role"] == "slave" ? "replica" : "standalone"
            }
            return RedisNodeStats(
                address: node, role: role,
                usedMemoryBytes: fields["used_memory"].flatMap { Int($0) } ?? 0,
                opsPerSecond: fields["instantaneous_ops_per_sec"].flatMap { Int($0) } ?? 0,
                connectedClients: fields["connected_clients"].flatMap { Int($0) } ?? 0
            )
        }
    }

    /// `INFO`'s `name:value` lines as a dictionary.
    static func infoFields(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(after: colon)...])
        }
        return fields
    }
}
