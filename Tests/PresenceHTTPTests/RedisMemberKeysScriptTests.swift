import Foundation
import NIOCore
@testable import PresenceCore
import Redis
import Testing
import TestSupport

/// `room_delete`, `room_leave_private` and `support_close` against a real `redis-server`: they get every member's
/// presence key in `KEYS[]` (Redis Cluster), and a member who joins after the store read the members is caught.
@Suite("Scripts over a room's members' presence keys")
struct RedisMemberKeysScriptTests {
    static let ttl = Duration.seconds(60)

    func client(_ url: String) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: url)
        // One connection each, so a command held by CLIENT PAUSE holds up nothing else of this client.
        configuration.connectionCount = 1
        configuration.commandTimeout = .seconds(10)
        return RedisClient(configuration: configuration)
    }

    /// A private room that alice, bob and carol may enter; alice and bob are present.
    func privateRoom(_ redis: RedisClient) async throws -> String {
        let id = "mk-" + UUID().uuidString.prefix(8).lowercased()
        _ = try await RedisRoomStore(redis: redis)
            .create(id: id, name: id, type: .private, createdBy: "alice", members: ["alice", "bob", "carol"])
        for user in ["alice", "bob"] { _ = try await RedisPresenceStore(redis: redis).join(room: id, user: user, ttl: Self.ttl) }
        return id
    }

    /// A support room with its customer alice and the agent bob present.
    func supportRoom(_ redis: RedisClient) async throws -> String {
        let ticket = "MK-" + UUID().uuidString.prefix(8)
        let room = "ticket_" + ticket
        _ = try await RedisSupportStore(redis: redis).open(room: room, ticket: ticket, user: "alice", asCustomer: true, isAgent: false)
        for user in ["alice", "bob"] { _ = try await RedisPresenceStore(redis: redis).join(room: room, user: user, ttl: Self.ttl) }
        return room
    }

    /// Every key of `room` the scripts may touch, serialised (`DUMP`; nil when absent).
    func dump(_ redis: RedisClient, room: String) async throws -> [RESPValue] {
        let keys = RedisRoomStore.roomKeys(room) + [RedisKeys.roomSnapshot(room)]
            + ["alice", "bob", "carol", "dave"].map { RedisKeys.roomPresence(room, $0) }
        return try await redis.pipeline(keys.map { RedisCommand("DUMP", $0) })
    }

    @Test func aStaleMemberListChangesNothingAndAnswersRetry() async throws {
        let redis = try client(SharedRedis.url())
        let rooms = RedisRoomStore(redis: redis)
        let room = try await privateRoom(redis)
        let ticket = try await supportRoom(redis)
        let scripts = [
            (rooms.deleteScript(room), room),
            (rooms.leavePrivateScript(room, user: "carol"), room),
            (RedisSupportStore(redis: redis).closeScript(room: ticket, by: "bob", deleteHistory: true, deleteSnapshot: false), ticket),
        ]
        for (script, id) in scripts {
            let before = try await dump(redis, room: id)
            // As read before bob joined: his presence key is missing.
            let reply = try await redis.run([script.call(users: script.alsoUsers + ["alice"])])[0]
            #expect(reply.errorMessage?.hasPrefix("RETRY") == true, "\(script.script.name): \(reply)")
            #expect(try await dump(redis, room: id) == before, "\(script.script.name) changed something")
        }
        // Read now, the members are complete and the calls go through.
        let leave = try #require(try await rooms.leavePrivate(room, user: "carol"))
        #expect(!leave.deleted && leave.userCount == 2)
        let closed = try await RedisSupportStore(redis: redis).close(room: ticket, by: "bob", deleteHistory: true, deleteSnapshot: false)
        #expect(closed.present.sorted() == ["alice", "bob"])
        #expect(try await rooms.delete(room) != nil)
        for id in [room, ticket] {
            let presence = try await redis.pipeline(["alice", "bob"].map { RedisCommand("EXISTS", RedisKeys.roomPresence(id, $0)) })
            #expect(presence == [.integer(0), .integer(0)], "presence keys left in \(id)")
        }
        await redis.close()
    }

    @Test func aMemberWhoJoinsBetweenTheReadAndTheScriptIsCaughtAndTheCallRetried() async throws {
        let server = try RedisServer.start()
        defer { server.stop() }
        let redis = try client(server.url)
        let room = try await privateRoom(redis)
        let deleted = try await whileDaveJoins(room, server: server) { try await RedisRoomStore(redis: redis).delete(room) }
        #expect(deleted?.members == ["alice", "bob", "carol"])
        #expect(try await dump(redis, room: room).allSatisfy(\.isNull), "a key of the deleted room is left")
        // The first run answered RETRY (dave's key was missing), the second one deleted the room.
        let errors = try await redis.send(RedisCommand("INFO", "errorstats")).string ?? ""
        #expect(errors.contains("errorstat_RETRY:count=1"), "\(errors)")
        await redis.close()
    }

    @Test func aCallThatKeepsMissingMembersGivesUpAndChangesNothing() async throws {
        let server = try RedisServer.start()
        defer { server.stop() }
        let redis = try client(server.url)
        let room = try await privateRoom(redis)
        let script = RedisRoomStore(redis: redis).deleteScript(room)
        let error = await #expect(throws: RedisError.self) {
            _ = try await whileDaveJoins(room, server: server) { try await script.run(on: redis, attempts: 1) }
        }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.contains("RETRY") && message.contains("gave up after 1 attempt"), "\(message)")
        let members = try await redis.send(RedisCommand("ZRANGE", RedisKeys.roomMembers(room), "0", "-1"))
        #expect(members.array?.compactMap(\.string).sorted() == ["alice", "bob", "dave"])
        #expect(try await redis.send(RedisCommand("EXISTS", RedisKeys.roomMeta(room))) == .integer(1))
        await redis.close()
    }

    /// Runs `operation` so that dave joins `room` after it read the members and before its script runs. Redis holds
    /// every write (`CLIENT PAUSE WRITE`, scripts included; reads go on): first dave's join, then, after the
    /// operation's read, its script. `CLIENT UNPAUSE` releases them in that order.
    func whileDaveJoins<T: Sendable>(
        _ room: String, server: RedisServer, operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let control = try client(server.url)
        let joiner = try client(server.url)
        try await joiner.ping()
        // Every script known beforehand: a NOSCRIPT retry must not change the order.
        for script in Scripts.all { try await control.send(RedisCommand("SCRIPT", "LOAD", script.source)) }
        try await control.send(RedisCommand("CLIENT", "PAUSE", "10000", "WRITE"))
        let join = Task { try await RedisPresenceStore(redis: joiner).join(room: room, user: "dave", ttl: Self.ttl) }
        try await waitUntilHeld(1, control)
        let running = Task { try await operation() }
        try await waitUntilHeld(2, control)
        try await control.send(RedisCommand("CLIENT", "UNPAUSE"))
        _ = try await join.value
        let result = await running.result
        await control.close()
        await joiner.close()
        return try result.get()
    }

    /// Waits until `count` clients are held by the pause (`blocked_clients`).
    func waitUntilHeld(_ count: Int, _ control: RedisClient) async throws {
        let deadline = ContinuousClock.now + .seconds(8)
        while ContinuousClock.now < deadline {
            let info = try await control.send(RedisCommand("INFO", "clients")).string ?? ""
            if info.contains("blocked_clients:\(count)\r") { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw TestHarnessError("Redis did not hold \(count) clients")
    }
}
