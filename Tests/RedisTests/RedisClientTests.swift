import Foundation
import Logging
import NIOCore
import NIOPosix
import Redis
import Synchronization
import Testing
import TestSupport

@Suite("Redis client against a real redis-server")
struct RedisClientTests {
    let client: RedisClient
    let prefix = uniquePrefix("client")

    init() throws {
        client = RedisClient(configuration: try SharedRedis.configuration())
    }

    @Test func everyReplyTypeFromRedis() async throws {
        let key = prefix + "k"
        #expect(try await client.send(RedisCommand("SET", key, "v")) == .simpleString("OK"))
        #expect(try await client.send(RedisCommand("INCR", prefix + "n")) == .integer(1))
        #expect(try await client.send(RedisCommand("GET", key)) == .bulkString(ByteBuffer(string: "v")))
        #expect(try await client.send(RedisCommand("GET", prefix + "missing")) == .null)
        #expect(try await client.send(RedisCommand("SET", prefix + "e", "")) == .simpleString("OK"))
        #expect(try await client.send(RedisCommand("GET", prefix + "e")) == .bulkString(ByteBuffer()))
        // Nil array: BLPOP timing out.
        #expect(try await client.send(RedisCommand("BLPOP", prefix + "nolist", "0.01")) == .null)
        // Nested arrays with every type inside, from Lua.
        let nested = try await client.send(RedisCommand(
            "EVAL", "return {1, 'two', {3, {'four', false}}, redis.status_reply('FINE'), {}}", "0"
        ))
        #expect(nested == .array([
            .integer(1), .bulkString(ByteBuffer(string: "two")),
            .array([.integer(3), .array([.bulkString(ByteBuffer(string: "four")), .null])]),
            .simpleString("FINE"), .array([]),
        ]))
        // An error reply keeps Redis's message.
        await #expect(throws: RedisError.server("ERR value is not an integer or out of range")) {
            try await client.send(RedisCommand("INCR", key))
        }
        let raw = try await client.raw(RedisCommand("LPUSH", key, "x"))
        #expect(raw.errorMessage?.hasPrefix("WRONGTYPE") == true)
    }

    @Test func binaryArgumentsRoundTrip() async throws {
        let value: [UInt8] = [0, 1, 13, 10, 0xff, 0xfe, 0xc3, 0x28, 0, 13, 10] + Array("*1\r\n$-1\r\n".utf8)
        let binaryKey: [UInt8] = Array((prefix + "bin").utf8) + [0, 10, 0xff]
        var set = RedisCommand("SET")
        set.append(bytes: binaryKey)
        set.append(bytes: value)
        try await client.send(set)
        var get = RedisCommand("GET")
        get.append(bytes: binaryKey)
        #expect(try await client.send(get).bytes == value)
        #expect(try await client.send(RedisCommand("STRLEN", String(decoding: binaryKey, as: UTF8.self))).int != value.count)
    }

    @Test func aLateBatchDoesNotCloseTheConnectionOthersShare() async throws {
        // Its own server: 400,000 replies hold a Redis for seconds on a busy machine, and the other suites' calls with it.
        let server = try RedisServer.start()
        defer { server.stop() }
        var configuration = try RedisConfiguration.forTests(url: server.url)
        configuration.connectionCount = 1
        configuration.commandTimeout = .milliseconds(300)
        let client = RedisClient(configuration: configuration)
        let id = try await client.send(RedisCommand("CLIENT", "ID"), timeout: .seconds(10))
        // Far more than Redis answers within 50 ms, but its replies keep streaming in.
        let batch = (0..<400_000).map { RedisCommand("ECHO", "reply-\($0)") }
        await #expect(throws: RedisError.timeout) { try await client.pipeline(batch, timeout: .milliseconds(50)) }
        // Commands behind it on the same connection get their replies, on the same connection.
        #expect(try await client.send(RedisCommand("ECHO", "after"), timeout: .seconds(30)) == .bulkString(ByteBuffer(string: "after")))
        #expect(try await client.send(RedisCommand("CLIENT", "ID"), timeout: .seconds(10)) == id)
        await client.close()
    }

    @Test func tenMegabyteBulkString() async throws {
        var big = [UInt8](repeating: 0, count: 10 * 1024 * 1024)
        for i in big.indices { big[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        var set = RedisCommand("SET", prefix + "big")
        set.append(bytes: big)
        try await client.send(set, timeout: .seconds(20))
        let reply = try await client.send(RedisCommand("GET", prefix + "big"), timeout: .seconds(20))
        guard case .bulkString(let buffer) = reply else {
            Issue.record("expected a bulk string, got something else")
            return
        }
        #expect(buffer.readableBytes == big.count)
        #expect(Array(buffer.readableBytesView) == big)
        try await client.delete([prefix + "big"])
    }

    @Test func tenThousandPipelinedCommands() async throws {
        let key = prefix + "counter"
        let replies = try await client.pipeline((0..<10_000).map { _ in RedisCommand("INCR", key) }, timeout: .seconds(20))
        #expect(replies.count == 10_000)
        #expect(replies == (1...10_000).map { RESPValue.integer(Int64($0)) })
        // And 10,000 independent commands in flight on the shared connections at once.
        let connection = RedisConnection(
            configuration: try SharedRedis.configuration(), eventLoop: client.connectionsEventLoop(), logger: Logger(label: "t")
        )
        let futures = (0..<10_000).map { i in connection.send(RedisCommand("ECHO", "m\(i)")) }
        for (i, future) in futures.enumerated() {
            #expect(try await future.get() == .bulkString(ByteBuffer(string: "m\(i)")))
        }
        try await connection.close().get()
    }

    @Test func hundredConcurrentTasks() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<100 {
                group.addTask {
                    for i in 0..<50 {
                        let key = prefix + "task\(task):\(i)"
                        try await client.set(key, to: "value-\(task)-\(i)")
                        let value = try await client.getString(key)
                        guard value == "value-\(task)-\(i)" else {
                            throw TestHarnessError("task \(task) read \(value ?? "nil") for \(key)")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let count = try await client.send(RedisCommand("EVAL",
            "return #redis.call('KEYS', ARGV[1])", "0", prefix + "task*")).int
        #expect(count == 5000)
    }

    @Test func scriptsRecoverFromNOSCRIPT() async throws {
        let url = try #require(Bundle.module.url(forResource: "counter", withExtension: "lua", subdirectory: "Scripts"))
        let script = try RedisScript(contentsOf: url)
        #expect(script.name == "counter")
        let key = prefix + "script"
        try await client.send(RedisCommand("SCRIPT", "FLUSH"))
        #expect(try await client.run(script, keys: [key], arguments: ["5"]) == .array([.bulkString(ByteBuffer(string: key)), .integer(5)]))
        #expect(try await client.send(RedisCommand("SCRIPT", "EXISTS", script.sha1)) == .array([.integer(1)]))
        try await client.send(RedisCommand("SCRIPT", "FLUSH"))
        // Two scripts in one round trip, both unknown to Redis, one raising an error.
        let failing = RedisScript(name: "fails", source: "return redis.error_reply('ERR nope')")
        let replies = try await client.run([
            RedisScriptCall(script, keys: [key], arguments: ["2"]),
            RedisScriptCall(failing, keys: [], arguments: []),
        ])
        #expect(replies[0] == .array([.bulkString(ByteBuffer(string: key)), .integer(7)]))
        #expect(replies[1] == .error("ERR nope"))
        await #expect(throws: RedisError.server("ERR nope")) { try await client.run(failing) }
    }

    @Test func detachedBatchesWithOneOrderKeyRunInOrder() async throws {
        var configuration = try SharedRedis.configuration()
        configuration.connectionCount = 4
        let client = RedisClient(configuration: configuration)
        let key = prefix + "ordered"
        let done = AsyncStream.makeStream(of: Void.self)
        let count = 2000
        let remaining = Atomic<Int>(count)
        // Spread over four connections, these would interleave; one order key keeps them on one, in order.
        for i in 0..<count {
            client.pipelineDetached([RedisCommand("RPUSH", key, String(i))], orderKey: "alice") { _ in
                if remaining.subtract(1, ordering: .relaxed).newValue == 0 { done.continuation.finish() }
            }
        }
        for await _ in done.stream {}
        let list = (try await client.send(RedisCommand("LRANGE", key, "0", "-1")).array ?? []).compactMap(\.string)
        #expect(list == (0..<count).map(String.init))
        await client.close()
    }

    @Test func subscribeAndUnsubscribeRequestsReachRedisInCallOrder() async throws {
        let subscriber = client.makeSubscriber()
        let channel = prefix + "flip"
        try await subscriber.subscribe([prefix + "warm"])
        // Many flips of one channel queued back to back, ending with a subscribe: the channel must end subscribed.
        var futures: [EventLoopFuture<Void>] = []
        for i in 0..<501 {
            futures.append(i % 2 == 0 ? subscriber.requestSubscribe([channel]) : subscriber.requestUnsubscribe([channel]))
        }
        for future in futures { try? await future.get() }
        let numsub = try await client.send(RedisCommand("PUBSUB", "NUMSUB", channel)).array ?? []
        #expect(numsub.last?.int == 1)
        #expect(try await client.publish("still wanted", to: channel) == 1)
        await subscriber.close()
    }

    @Test func pubSubDelivery() async throws {
        let subscriber = client.makeSubscriber()
        let channel = prefix + "chan"
        try await subscriber.subscribe([channel, channel + ":other"])
        #expect(await subscriber.subscribedChannels == [channel, channel + ":other"])
        #expect(try await client.publish("hello", to: channel) == 1)
        #expect(try await client.publish("second", to: channel + ":other") == 1)
        var iterator = subscriber.events.makeAsyncIterator()
        #expect(await iterator.next() == .message(channel: channel, payload: ByteBuffer(string: "hello")))
        #expect(await iterator.next() == .message(channel: channel + ":other", payload: ByteBuffer(string: "second")))
        try await subscriber.unsubscribe([channel])
        #expect(try await client.publish("ignored", to: channel) == 0)
        #expect(try await client.publish("third", to: channel + ":other") == 1)
        #expect(await iterator.next() == .message(channel: channel + ":other", payload: ByteBuffer(string: "third")))
        await subscriber.close()
        #expect(await iterator.next() == nil)
    }
}

extension RedisClient {
    /// An event loop of the group the client runs on (for tests that drive a connection directly).
    func connectionsEventLoop() -> any EventLoop { MultiThreadedEventLoopGroup.singleton.next() }
}
