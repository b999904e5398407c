import Redis
import Testing

@Suite("Redis connection strings")
struct RedisConfigurationTests {
    @Test func tcpWithEverything() throws {
        let c = try RedisConfiguration(url: "redis://alice:s%40cret@redis.local:6380/3")
        #expect(c.endpoint == .tcp(host: "redis.local", port: 6380))
        #expect(c.username == "alice")
        #expect(c.password == "s@cret")
        #expect(c.database == 3)
    }

    @Test func defaultsAndPasswordOnly() throws {
        let plain = try RedisConfiguration(url: "redis://localhost")
        #expect(plain.endpoint == .tcp(host: "localhost", port: 6379))
        #expect(plain.username == nil && plain.password == nil && plain.database == 0)
        let passwordOnly = try RedisConfiguration(url: "redis://:pw@127.0.0.1:7000/")
        #expect(passwordOnly.username == nil)
        #expect(passwordOnly.password == "pw")
        #expect(passwordOnly.endpoint == .tcp(host: "127.0.0.1", port: 7000))
    }

    @Test func clusterSeeds() throws {
        let c = try RedisConfiguration(url: "redis+cluster://app:s%40cret@10.0.0.1:7000,[::1]:7001,node3")
        #expect(c.clusterSeeds == [.tcp(host: "10.0.0.1", port: 7000), .tcp(host: "::1", port: 7001), .tcp(host: "node3", port: 6379)])
        #expect(c.endpoint == .tcp(host: "10.0.0.1", port: 7000))
        #expect(c.username == "app" && c.password == "s@cret" && c.database == 0)
        #expect(try RedisConfiguration(url: "redis+cluster://h:1/0").clusterSeeds.count == 1)
        #expect(try RedisConfiguration(url: "redis://h:1").clusterSeeds.isEmpty)
        #expect(throws: RedisConfigurationError.self) { try RedisConfiguration(url: "redis+cluster://h:1,h:2/3") }
        do {
            _ = try RedisConfiguration(url: "redis+cluster://h:1/3")
        } catch {
            #expect(error.message.contains("only database 0"))
        }
        #expect(throws: RedisConfigurationError.self) { try RedisConfiguration(url: "redis+cluster://") }
        #expect(throws: RedisConfigurationError.self) { try RedisConfiguration(url: "redis+cluster://h:1,,h:2") }
        #expect(throws: RedisConfigurationError.self) { try RedisConfiguration(url: "redis+cluster://h:99999") }
    }

    @Test func ipv6AndUnixSocket() throws {
        #expect(try RedisConfiguration(url: "redis://[::1]:6390").endpoint == .tcp(host: "::1", port: 6390))
        let unix = try RedisConfiguration(url: "unix:///run/redis/redis.sock?db=2")
        #expect(unix.endpoint == .unixSocket(path: "/run/redis/redis.sock"))
        #expect(unix.database == 2)
    }

    @Test(arguments: ["http://x", "redis://", "redis://host:0", "redis://host:99999", "redis://host:abc",
                      "redis://host/x", "unix://relative", "redis://:%zz@host"])
    func rejected(url: String) {
        #expect(throws: RedisConfigurationError.self) { try RedisConfiguration(url: url) }
    }
}
