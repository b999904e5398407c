import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PresenceCore
import PresenceHTTP
import Redis
import Testing
import TestSupport

@testable import PresenceApp
@testable import PresenceHTTP
@testable import PresenceRealtime
@testable import PresenceRedis

func items(_ value: JSONValue?) -> [JSONValue] {
    if case .array(let elements)? = value { return elements }
    return []
}

@Suite("Web client, operator console and worker announcements")
struct WebAndConsoleTests {
    static let csp = "default-src 'none'; script-src 'self'"

    func services(admins: Set<String> = []) throws -> (AppServices, RedisClient) {
        var configuration = AppConfiguration()
        configuration.redis = try SharedRedis.configuration()
        configuration.redis.commandTimeout = .seconds(3)
        configuration.bcryptCost = 4
        configuration.chat.admins = admins
        configuration.adminPassword = "admin-password"
        configuration.pusher.key = "key\"<&>"
        let redis = RedisClient(configuration: configuration.redis)
        return (AppServices(configuration: configuration, redis: redis, logger: Logger(label: "test")), redis)
    }

    @Test func pagesAreTemplatesWithEscapedValuesAndTheSecurityHeaders() async throws {
        let (services, redis) = try services()
        let app = Application(router: buildRouter(services), services: [redis])
        try await app.test(.router) { client in
            for path in ["/", "/console"] {
                try await client.execute(uri: path, method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                    #expect(response.headers[HTTPField.Name("Content-Security-Policy")!]?.hasPrefix(Self.csp) == true)
                    #expect(response.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
                    #expect(response.headers[.cacheControl] == "no-cache")
                    let html = String(buffer: response.body)
                    #expect(!html.contains("{{"), "every placeholder is filled")
                    #expect(html.contains("key&quot;&lt;&amp;&gt;"), "values are HTML-escaped")
                    #expect(!html.contains("key\"<"))
                    #expect(html.range(of: #"/assets/[0-9a-f]{12}/"#, options: .regularExpression) != nil)
                }
            }
        }
    }

    @Test func assetsAreVersionedCachedAndOnlyByName() async throws {
        let (services, redis) = try services()
        let app = Application(router: buildRouter(services), services: [redis])
        let web = try #require(WebAssets.bundled(settings: .init(pusherKey: "k", chatTTLSeconds: 90, supportTTLSeconds: 45)))
        #expect(web.pages.keys.sorted() == ["console.html", "index.html"])
        #expect(web.assets["app.js"] != nil && web.assets["style.css"] != nil)
        try await app.test(.router) { client in
            try await client.execute(uri: "/assets/\(web.version)/app.js", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/javascript; charset=utf-8")
                #expect(response.headers[.cacheControl] == "public, max-age=31536000, immutable")
                #expect(response.headers[HTTPField.Name("Content-Security-Policy")!]?.hasPrefix(Self.csp) == true)
            }
            try await client.execute(uri: "/assets/\(web.version)/style.css", method: .get) { response in
                #expect(response.headers[.contentType] == "text/css; charset=utf-8")
            }
            // Another build's version: the file of this build, not cached for good.
            try await client.execute(uri: "/assets/000000000000/app.js", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.cacheControl] == "no-cache")
            }
            for uri in ["/assets/\(web.version)/nope.js", "/assets/\(web.version)/index.html", "/assets/\(web.version)/..%2FPackage.swift",
                        "/assets/\(web.version)/%2e%2e", "/assets/\(web.version)"] {
                try await client.execute(uri: uri, method: .get) { response in
                    #expect(response.status == .notFound, "\(uri)")
                    #expect(String(buffer: response.body) == #"{"error":"Not found"}"#)
                }
            }
        }
    }

    @Test func theVersionFollowsTheContent() {
        let settings = WebAssets.PageSettings(pusherKey: "k", chatTTLSeconds: 90, supportTTLSeconds: 45)
        let a = WebAssets(files: ["app.js": Array("a".utf8), "index.html": Array("{{ASSETS}}".utf8)], settings: settings)
        let b = WebAssets(files: ["app.js": Array("b".utf8), "index.html": Array("{{ASSETS}}".utf8)], settings: settings)
        #expect(a.version != b.version)
        #expect(String(buffer: a.pages["index.html"]!) == "/assets/\(a.version)")
        // Names that are not plain file names are never served.
        let c = WebAssets(files: [".hidden.js": [1], "a b.js": [1], "x.exe": [1]], settings: settings)
        #expect(c.assets.isEmpty)
    }

    @Test func theConsoleAnswersAdminsOnly() async throws {
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let admin = "boss\(suffix)", user = "pat\(suffix)"
        let (services, redis) = try services(admins: [admin])
        redis.connect()
        try await services.operations.announce(worker: "test-\(suffix)", info: #"{"host":"h","port":1,"sockets":2,"leavesPerMinute":3}"#, ttl: .seconds(30))
        let app = Application(router: buildRouter(services), services: [redis])
        try await app.test(.router) { client in
            try await client.execute(uri: "/api/console/overview", method: .get) { response in
                #expect(response.status == .unauthorized)
            }
            let userToken = try await client.execute(
                uri: "/api/auth/register", method: .post, body: ByteBuffer(string: #"{"username":"\#(user)","password":"password123"}"#)
            ) { response in
                try #require(response.status == .created)
                return try #require(JSONValue.parse(Array(response.body.readableBytesView))?.object?["token"]?.string)
            }
            try await client.execute(
                uri: "/api/console/overview", method: .get,
                headers: [.authorization: "Bearer \(userToken)", HTTPField.Name("X-Username")!: user]
            ) { response in
                #expect(response.status == .forbidden)
                #expect(String(buffer: response.body) == #"{"error":"Forbidden"}"#)
            }
            let adminToken = try await client.execute(
                uri: "/api/auth/login", method: .post, body: ByteBuffer(string: #"{"username":"\#(admin)","password":"admin-password"}"#)
            ) { response in
                try #require(response.status == .ok)
                return try #require(JSONValue.parse(Array(response.body.readableBytesView))?.object?["token"]?.string)
            }
            try await client.execute(
                uri: "/api/console/overview", method: .get,
                headers: [.authorization: "Bearer \(adminToken)", HTTPField.Name("X-Username")!: admin]
            ) { response in
                #expect(response.status == .ok)
                let body = try #require(JSONValue.parse(Array(response.body.readableBytesView))?.object)
                let workers = items(body["workers"])
                let mine = workers.first { $0.object?["id"]?.string == "test-\(suffix)" }?.object
                #expect(mine?["sockets"]?.int == 2)
                #expect((body["totals"]?.object?["leavesPerMinute"]?.int ?? 0) >= 3)
                #expect(items(body["redis"]?.object?["nodes"]).first?.object?["role"]?.string == "standalone")
                #expect((items(body["redis"]?.object?["nodes"]).first?.object?["usedMemoryBytes"]?.int ?? 0) > 0)
            }
            try await services.operations.announce(worker: "test-\(suffix)", info: "", ttl: .zero)
        }
    }

    @Test func workersLapseAfterTheirTTLAndRetireAtOnce() async throws {
        let (services, redis) = try services()
        redis.connect()
        defer { Task { await redis.close() } }
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let store = services.operations
        // No timing assumed: the short announcement must go within a generous bound, the long one stay throughout.
        try await store.announce(worker: "long-\(suffix)", info: #"{"a":1}"#, ttl: .seconds(60))
        try await store.announce(worker: "short-\(suffix)", info: "{}", ttl: .milliseconds(500))
        // The short announcement does not shorten the keys' life, which would take the long-lived worker with them.
        for key in [RedisKeys.workersAlive, RedisKeys.workersInfo] {
            #expect(try await redis.send(RedisCommand("PTTL", key)).int ?? 0 > 60_000, "\(key)")
        }
        let start = ContinuousClock.now
        var ids = try await store.liveWorkers().map(\.id)
        while ids.contains("short-\(suffix)") && ContinuousClock.now - start < .seconds(20) {
            try await Task.sleep(for: .milliseconds(100))
            ids = try await store.liveWorkers().map(\.id)
        }
        #expect(!ids.contains("short-\(suffix)") && ids.contains("long-\(suffix)"))
        // The next announcement prunes the lapsed worker's entry from Redis too.
        try await store.announce(worker: "long-\(suffix)", info: #"{"a":2}"#, ttl: .seconds(30))
        let info = try await redis.send(RedisCommand("HGET", RedisKeys.workersInfo, "short-\(suffix)"))
        #expect(info == .null)
        #expect(try await store.liveWorkers().first { $0.id == "long-\(suffix)" }?.info == #"{"a":2}"#)
        try await store.announce(worker: "long-\(suffix)", info: "", ttl: .zero)
        #expect(!(try await store.liveWorkers().map(\.id).contains("long-\(suffix)")))
    }

    @Test func busiestRoomsComeFromTheSweepersWorkList() async throws {
        let (services, redis) = try services()
        redis.connect()
        defer { Task { await redis.close() } }
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let busy = "busy\(suffix)", quiet = "quiet\(suffix)"
        let presence = RedisPresenceStore(redis: redis, logger: Logger(label: "test"))
        for (room, users) in [(busy, 3), (quiet, 1)] {
            // The room first, on its own: a pipeline that opens a room and joins it is reordered when another suite's
            // SCRIPT FLUSH makes its first script be loaded and run again after the others.
            _ = try await RedisRoomStore(redis: redis).create(id: room, name: room, type: .public, createdBy: "system", members: [])
            for index in 0..<users {
                _ = try await presence.attachSocket("s\(index)", user: "u\(index)", room: room, openingChannel: nil, ttl: .seconds(30))
            }
        }
        let report = try await services.operations.busiestRooms(limit: 1_000, scan: 100_000)
        let counts = Dictionary(report.rooms.map { ($0.id, $0.userCount) }, uniquingKeysWith: { a, _ in a })
        #expect(counts[busy] == 3 && counts[quiet] == 1)
        let order = report.rooms.map(\.id)
        #expect(order.firstIndex(of: busy)! < order.firstIndex(of: quiet)!)
    }

    @Test func workerStatsSampleRateAndP99() {
        let stats = WorkerStats()
        let start = ContinuousClock.now
        _ = stats.sample(leavesTotal: 10, rejectionsTotal: 4, now: start)
        for _ in 0..<990 { stats.record(nanoseconds: 1_000_000) }   // 1 ms
        for _ in 0..<10 { stats.record(nanoseconds: 200_000_000) }  // 200 ms
        let sample = stats.sample(leavesTotal: 13, rejectionsTotal: 4, now: start + .seconds(5))
        #expect(sample.requestsPerSecond == 200)
        #expect(sample.p99Milliseconds >= 1 && sample.p99Milliseconds < 1.25, "the 990th of 1,000 is a 1 ms request")
        #expect(sample.leaves == 3 && sample.rejections == 0)
        for _ in 0..<100 { stats.record(nanoseconds: 200_000_000) }
        let slow = stats.sample(leavesTotal: 13, rejectionsTotal: 4, now: start + .seconds(10))
        #expect(slow.p99Milliseconds >= 200 && slow.p99Milliseconds < 250)
        #expect(stats.history.count == 3)
        let empty = stats.sample(now: start + .seconds(15))
        #expect(empty.requestsPerSecond == 0 && empty.p99Milliseconds == 0)
    }

    @Test func sameOriginRequestsPassForAddressesAndLocalhostOnly() {
        #expect(OriginPolicy.isSameOrigin("http://192.0.2.7:8080", host: "192.0.2.7:8080"))
        #expect(OriginPolicy.isSameOrigin("https://LOCALHOST:8443", host: "localhost:8443"))
        #expect(OriginPolicy.isSameOrigin("http://[::1]:8080", host: "[::1]:8080"))
        #expect(!OriginPolicy.isSameOrigin("http://192.0.2.7", host: "192.0.2.7:8080"))
        // A name can be rebound to this server (DNS rebinding): its own-host pass would let any page through.
        #expect(!OriginPolicy.isSameOrigin("http://chat.example.com", host: "chat.example.com"))
        #expect(!OriginPolicy.isSameOrigin("http://evil.example:8080", host: "evil.example:8080"))
        #expect(!OriginPolicy.isSameOrigin("http://1.2.3.4.evil.example", host: "1.2.3.4.evil.example"))
        #expect(!OriginPolicy.isSameOrigin("http://999.1.1.1", host: "999.1.1.1"))
        // Named hosts pass when the operator names them.
        #expect(OriginPolicy(patterns: [], publicOrigin: "https://chat.example.com").allows("https://chat.example.com", host: "chat.example.com"))
        #expect(!OriginPolicy(patterns: [], publicOrigin: nil).allows("https://chat.example.com", host: "chat.example.com"))
        #expect(!OriginPolicy.isSameOrigin("http://evil.example", host: "chat.example.com"))
        #expect(!OriginPolicy.isSameOrigin("null", host: "null"))
        #expect(!OriginPolicy.isSameOrigin("http://a", host: nil))
    }
}
