import Foundation
import Hummingbird
import PresenceCore
import PresenceRedis
import PresenceRealtime
import PresenceHTTP

/// `GET /api/console/overview`: the operator console's data, for admins only (401 without credentials, 403 for any
/// other user). Workers alive with their announcements, the busiest rooms, totals, and each Redis primary's figures.
struct ConsoleController {
    let storage: any OperationsStorage
    let authenticator: Authenticator
    let admins: AdminRoster

    /// Rooms listed, and rooms scanned to find them.
    static let roomLimit = 50
    static let roomScan = 2_000

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("/api/console/overview") { request, _ in
            let user = try await authenticator.authenticate(request)
            guard admins.isAdmin(user) else { throw APIError(.forbidden, "Forbidden") }
            return JSONResponse.make(try await overview(), headers: [.cacheControl: "no-store"])
        }
    }

    func overview() async throws -> JSONValue {
        async let workersRead = storage.liveWorkers()
        async let roomsRead = storage.busiestRooms(limit: Self.roomLimit, scan: Self.roomScan)
        async let nodesRead = storage.nodes()
        let (workers, rooms, nodes) = try await (workersRead, roomsRead, nodesRead)
        let announcements: [[String: JSONValue]] = workers.compactMap { worker in
            guard var object = JSONValue.parse(Array(worker.info.utf8))?.object else { return nil }
            object["id"] = .string(worker.id)
            return object
        }
        func total(_ field: String) -> Int { announcements.reduce(0) { $0 + ($1[field]?.int ?? 0) } }
        return [
            "now": .int64(Int64(Date().timeIntervalSince1970 * 1000)),
            "version": .string(ServiceVersion.current),
            "workers": .array(announcements.map { .object($0) }),
            "rooms": .array(rooms.rooms.map { ["id": .string($0.id), "userCount": .int($0.userCount)] }),
            "totals": [
                "workers": .int(announcements.count), "sockets": .int(total("sockets")),
                "rooms": .int(rooms.occupiedRooms), "roomsScanned": .int(rooms.roomsScanned), "present": .int(rooms.present),
                "leavesPerMinute": .int(total("leavesPerMinute")), "rejectionsPerMinute": .int(total("rejectionsPerMinute")),
            ],
            "redis": ["nodes": .array(nodes.map {
                ["address": .string($0.address), "role": .string($0.role), "usedMemoryBytes": .int($0.usedMemoryBytes),
                 "opsPerSecond": .int($0.opsPerSecond), "connectedClients": .int($0.connectedClients)]
            })],
        ]
    }
}
