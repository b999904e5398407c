/// What the operator console reads and the workers write about themselves: the live workers, the busiest rooms and
/// the Redis nodes.
public protocol OperationsStorage: Sendable {
    /// Records (or refreshes) a worker's announcement, alive for `ttl`; a `ttl` of zero retires the worker. Workers
    /// whose announcement lapsed are pruned on the way.
    func announce(worker id: String, info: String, ttl: Duration) async throws
    /// The announcements of the workers alive now (id, JSON), by id.
    func liveWorkers() async throws -> [(id: String, info: String)]
    /// The rooms with the most users present, most first, among at most `scan` rooms that have presence, plus how
    /// many rooms were scanned and how many users they hold in all.
    func busiestRooms(limit: Int, scan: Int) async throws -> RoomOccupancyReport
    /// Memory, load and role of each Redis primary (of the one Redis outside a cluster).
    func nodes() async throws -> [RedisNodeStats]
}

/// The rooms with presence, by occupancy.
public struct RoomOccupancyReport: Sendable, Equatable {
    /// The busiest rooms: id and users present, most first.
    public var rooms: [(id: String, userCount: Int)]
    /// Rooms scanned (every room on the sweeper's work list, up to the scan limit), how many of them have someone
    /// present, and users present in them in all.
    public var roomsScanned: Int
    public var occupiedRooms: Int
    public var present: Int

    public init(rooms: [(id: String, userCount: Int)], roomsScanned: Int, occupiedRooms: Int, present: Int) {
        self.rooms = rooms
        self.roomsScanned = roomsScanned
        self.occupiedRooms = occupiedRooms
        self.present = present
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.roomsScanned == rhs.roomsScanned && lhs.present == rhs.present && lhs.occupiedRooms == rhs.occupiedRooms
            && lhs.rooms.map(\.id) == rhs.rooms.map(\.id) && lhs.rooms.map(\.userCount) == rhs.rooms.map(\.userCount)
    }
}

/// One Redis server's figures from `INFO`.
public struct RedisNodeStats: Sendable, Equatable {
    public var address: String
    /// `primary`, `replica` or `standalone`.
    public var role: String
    public var usedMemoryBytes: Int
    public var opsPerSecond: Int
    public var connectedClients: Int

    public init(address: String, role: String, usedMemoryBytes: Int, opsPerSecond: Int, connectedClients: Int) {
        self.address = address
        self.role = role
        self.usedMemoryBytes = usedMemoryBytes
        self.opsPerSecond = opsPerSecond
        self.connectedClients = connectedClients
    }
}
