import Foundation
import Glibc
import NIOCore
import NIOPosix
import Redis
import Testing
import TestSupport

/// Faults on real redis-server processes owned by each test: kill, restart, stop, wrong password.
@Suite("Redis client under faults", .serialized)
struct RedisFaultTests {
    func configuration(_ url: String, timeoutMilliseconds: Int64 = 2000) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: url)
        configuration.commandTimeout = .milliseconds(timeoutMilliseconds)
        configuration.connectTimeout = .milliseconds(timeoutMilliseconds)
        configuration.reconnectMaxDelay = .milliseconds(200)
        return configuration
    }

    /// Whether `client` answers a PING again within `limit`, without being restarted.
    func recovers(_ client: RedisClient, within limit: Duration = .seconds(10)) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if (try? await client.ping()) != nil { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    @Test func commandFailsWithinBoundedWaitWhenNothingListens() async throws {
        let port = try RedisServer.freePort()
        let client = RedisClient(configuration: try configuration("redis://127.0.0.1:\(port)", timeoutMilliseconds: 300))
        let start = ContinuousClock.now
        do {
            try await client.ping()
            Issue.record("PING succeeded with nothing listening")
        } catch let error as RedisError {
            guard case .unavailable(let reason) = error else {
                Issue.record("expected .unavailable, got \(error)")
                return
            }
            #expect(reason.contains("127.0.0.1:\(port)"))
        }
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(250))
        #expect(elapsed < .seconds(3))  // bounded (300 ms wait), with room for a busy machine
        await client.close()
    }

    @Test func reconnectsAfterRestartAndFailsFastWhileDown() async throws {
        let server = try RedisServer.start()
        defer { server.stop() }
        let client = RedisClient(configuration: try configuration(server.url, timeoutMilliseconds: 500))
        // Calls that are not under test get a generous wait: CI machines are busy.
        try await client.send(RedisCommand("SET", "k", "before"), timeout: .seconds(10))
        server.kill9()
        let start = ContinuousClock.now
        await #expect(throws: RedisError.self) { try await client.ping() }
        #expect(ContinuousClock.now - start < .seconds(3))  // bounded (500 ms wait), with room for a busy machine
        try server.launch()
        // Back without restarting the client, within the capped backoff.
        #expect(try await recovers(client))
        #expect(try await client.send(RedisCommand("GET", "k"), timeout: .seconds(10)) == .null)  // fresh server
        await client.close()
    }

    @Test func stuckServerTimesOutThenRecovers() async throws {
        let server = try RedisServer.start()
        defer {
            server.signal(SIGCONT)
            server.stop()
        }
        let client = RedisClient(configuration: try configuration(server.url, timeoutMilliseconds: 400))
        try await client.ping(timeout: .seconds(10))
        server.signal(SIGSTOP)
        let start = ContinuousClock.now
        // Sent and unanswered: `.timeout`. On a busy machine the connection may have been dropped (a 400 ms wait
        // missed) and not made again yet, and a stopped server completes no handshake: `.unavailable`. Either way the
        // call fails, as unavailability, within the bounded wait.
        do {
            try await client.ping()
            Issue.record("a stopped server answered PING")
        } catch let error as RedisError {
            var expected = error == .timeout
            if case .unavailable = error { expected = true }
            #expect(expected, "\(error)")
        }
        #expect(ContinuousClock.now - start < .seconds(3))  // bounded (400 ms wait), with room for a busy machine
        server.signal(SIGCONT)
        #expect(try await recovers(client))
        await client.close()
    }

    @Test func inFlightCommandsFailWithConnectionLost() async throws {
        let server = try RedisServer.start()
        defer { server.stop() }
        let client = RedisClient(configuration: try configuration(server.url, timeoutMilliseconds: 3000))
        try await client.ping(timeout: .seconds(10))
        let blocked = Task { try await client.raw(RedisCommand("BLPOP", "nothing", "10"), timeout: .seconds(5)) }
        // Kill only once Redis holds the command (a fixed sleep is not enough on a busy machine).
        let observer = RedisClient(configuration: try configuration(server.url, timeoutMilliseconds: 3000))
        let deadline = ContinuousClock.now + .seconds(4)
        while ContinuousClock.now < deadline {
            let info = try await observer.send(RedisCommand("INFO", "clients"), timeout: .seconds(2)).string ?? ""
            if info.contains("blocked_clients:1") { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        await observer.close()
        server.kill9()
        await #expect(throws: RedisError.connectionLost) { try await blocked.value }
        await client.close()
    }

    @Test func resubscribesAfterRedisIsKilledAndRestarted() async throws {
        let server = try RedisServer.start()
        defer { server.stop() }
        let config = try configuration(server.url)
        let client = RedisClient(configuration: config)
        let subscriber = client.makeSubscriber(healthCheckInterval: .milliseconds(200))
        try await subscriber.subscribe(["a", "b"])
        var events = subscriber.events.makeAsyncIterator()
        #expect(try await client.publish("one", to: "a") == 1)
        #expect(await events.next() == .message(channel: "a", payload: ByteBuffer(string: "one")))

        server.kill9()
        try server.launch()
        // The subscriber notices, reconnects, resubscribes to both channels, then says so.
        #expect(await events.next() == .reconnected)
        #expect(try await client.send(RedisCommand("PUBSUB", "NUMSUB", "a", "b"))
            == .array([.bulkString(ByteBuffer(string: "a")), .integer(1), .bulkString(ByteBuffer(string: "b")), .integer(1)]))
        #expect(try await client.publish("two", to: "b") == 1)
        #expect(await events.next() == .message(channel: "b", payload: ByteBuffer(string: "two")))
        await subscriber.close()
        await client.close()
    }

    @Test func authAndSelectOnConnect() async throws {
        let server = try RedisServer.start(["--requirepass", "s3cret"])
        defer { server.stop() }
        let client = RedisClient(configuration: try configuration("redis://:s3cret@127.0.0.1:\(server.port)/3"))
        try await client.set("where", to: "db3")
        let other = RedisClient(configuration: try configuration("redis://:s3cret@127.0.0.1:\(server.port)/0"))
        #expect(try await other.getString("where") == nil)
        #expect(try await other.send(RedisCommand("DBSIZE")) == .integer(0))
        try await other.send(RedisCommand("SELECT", "3"))
        // ACL user with its own password (Redis 6+).
        try await client.send(RedisCommand("ACL", "SETUSER", "alice", "on", ">alicepw", "~*", "&*", "+@all"))
        let alice = RedisClient(configuration: try configuration("redis://alice:alicepw@127.0.0.1:\(server.port)/3"))
        #expect(try await alice.getString("where") == "db3")
        #expect(try await alice.send(RedisCommand("ACL", "WHOAMI")) == .bulkString(ByteBuffer(string: "alice")))

        let wrong = RedisClient(configuration: try configuration("redis://:nope@127.0.0.1:\(server.port)"))
        do {
            try await wrong.ping()
            Issue.record("PING with a wrong password succeeded")
        } catch let error as RedisError {
            #expect("\(error)".contains("WRONGPASS") || "\(error)".contains("invalid"))
        }
        for c in [client, other, alice, wrong] { await c.close() }
    }

    @Test func unixSocket() async throws {
        let port = try RedisServer.freePort()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("presence-redis-\(port).sock").path
        let server = try RedisServer.start(["--unixsocket", path, "--unixsocketperm", "700"])
        defer { server.stop() }
        let client = RedisClient(configuration: try configuration("unix://\(path)"))
        try await client.set("via", to: "socket")
        let tcp = RedisClient(configuration: try configuration(server.url))
        #expect(try await tcp.getString("via") == "socket")
        await client.close()
        await tcp.close()
    }

    @Test func garbageFromTheServerIsAProtocolError() async throws {
        // A real TCP peer that answers every request with bytes that are not RESP.
        let group = MultiThreadedEventLoopGroup.singleton
        let listener = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(GarbageResponder())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(listener.localAddress?.port)
        let client = RedisClient(configuration: try configuration("redis://127.0.0.1:\(port)"))
        do {
            try await client.ping()
            Issue.record("PING against garbage succeeded")
        } catch let error as RedisError {
            guard case .protocolError = error else {
                Issue.record("expected a protocol error, got \(error)")
                return
            }
        }
        await client.close()
        try await listener.close()
    }
}

private final class GarbageResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "!!not resp\r\n")), promise: nil)
    }
}
