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

/// A room and how many users are present in it.
public struct RoomOccupancy: Sendable, Hashable {
    public var id: String
    public var userCount: Int

    public init(id: String, userCount: Int) {
        self.id = id
        self.userCount = userCount
    }
}

/// The rooms with presence, by occupancy.
public struct RoomOccupancyReport: Sendable, Equatable {
    /// The busiest rooms, most first.
    public var rooms: [RoomOccupancy]
    /// Rooms scanned (every room on the sweeper's work list, up to the scan limit), how many of them have someone
    /// present, and users present in them in all.
    public var roomsScanned: Int
    public var occupiedRooms: Int
    public var present: Int

    public init(rooms: [RoomOccupancy], roomsScanned: Int, occupiedRooms: Int, present: Int) {
        self.rooms = rooms
        self.roomsScanned = roomsScanned
        self.occupiedRooms = occupiedRooms
        self.present = present
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
