import Foundation
import Hummingbird
import Logging
import NIOCore
import HummingbirdTesting
import PresenceApp
import PresenceHTTP
import PresenceRealtime
import PresenceRedis
import Redis
import PresenceCore
import Testing
import TestSupport

@Suite("Health, readiness and JSON errors")
struct HealthRoutesTests {
    func app(redisURL: String, timeoutMilliseconds: Int64 = 300) throws -> some ApplicationProtocol {
        var configuration = AppConfiguration()
        configuration.redis = try RedisConfiguration(url: redisURL)
        configuration.redis.commandTimeout = .milliseconds(timeoutMilliseconds)
        configuration.redis.connectTimeout = .milliseconds(timeoutMilliseconds)
        configuration.bcryptCost = 4
        let redis = RedisClient(configuration: configuration.redis)
        let services = AppServices(configuration: configuration, redis: redis, logger: Logger(label: "test"))
        return Application(router: buildRouter(services), services: [redis])
    }

    @Test func healthAndReadyWithRedis() async throws {
        // A generous bounded wait: this runs beside every other suite, right after a cold build.
        try await app(redisURL: SharedRedis.url(), timeoutMilliseconds: 3000).test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"status":"ok"}"#)
            }
            try await client.execute(uri: "/ready", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"status":"ready"}"#)
            }
        }
    }

    @Test func readyIs503WithoutRedis() async throws {
        let port = try RedisServer.freePort()
        try await app(redisURL: "redis://127.0.0.1:\(port)").test(.router) { client in
            try await client.execute(uri: "/ready", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body) == #"{"error":"Redis unavailable"}"#)
                #expect(response.headers[.contentType] == "application/json; charset=utf-8")
            }
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func unknownRoutesAreJSON404() async throws {
        try await app(redisURL: SharedRedis.url()).test(.router) { client in
            for (uri, method) in [("/nope", HTTPRequest.Method.get), ("/health/extra", .get), ("/nope/deeper", .post)] {
                try await client.execute(uri: uri, method: method) { response in
                    #expect(response.status == .notFound)
                    #expect(String(buffer: response.body) == #"{"error":"Not found"}"#)
                }
            }
        }
    }
}

@Suite("Configuration from flags and environment")
struct AppConfigurationTests {
    func load(_ arguments: [String] = [], _ environment: [String: String] = [:]) throws -> AppConfiguration {
        guard case .run(let configuration) = try AppConfiguration.load(arguments: arguments, environment: environment) else {
            throw TestHarnessError("expected a configuration, got help")
        }
        return configuration
    }

    @Test func defaults() throws {
        let c = try load()
        #expect(c.host == "127.0.0.1" && c.port == 8080)
        #expect(c.redis.endpoint == .tcp(host: "127.0.0.1", port: 6379))
        #expect(c.logLevel == .info)
        #expect(c.redis.commandTimeout == .seconds(2))
        // Safe on a fresh install: no admin, metrics on loopback only.
        #expect(c.chat.admins.isEmpty && c.adminPassword == nil)
        #expect(c.metricsHost == "127.0.0.1" && c.effectiveMetricsPort == 9464)
        // Workers started by hand with only PORT set each get their own metrics port.
        #expect(try load([], ["PORT": "8081"]).effectiveMetricsPort == 9465)
        #expect(try load([], ["PORT": "8081", "METRICS_PORT": "0"]).effectiveMetricsPort == 0)
    }

    @Test func adminsMustBeNamesAnAccountCanHave() throws {
        #expect(try load([], ["ADMIN_USERS": "Boss, ops-1"]).chat.admins == ["boss", "ops-1"])
        // ryOS's UI takes the account `ryo` for its admin (the AI's messages still carry isAI).
        #expect(try load([], ["ADMIN_USERS": "RYO"]).chat.admins == ["ryo"])
        for bad in ["bad name", "x"] {
            #expect(throws: ConfigurationError.self) { try load([], ["ADMIN_USERS": bad]) }
        }
        #expect(throws: ConfigurationError.self) { try load([], ["ADMIN_PASSWORD": "short"]) }
    }

    @Test func environmentThenFlagsWin() throws {
        let env = ["PORT": "9000", "REDIS_URL": "redis://:pw@r:7000/2", "LOG_LEVEL": "DEBUG", "HOST": "0.0.0.0"]
        let fromEnv = try load([], env)
        #expect(fromEnv.port == 9000 && fromEnv.host == "0.0.0.0" && fromEnv.logLevel == .debug)
        #expect(fromEnv.redis.endpoint == .tcp(host: "r", port: 7000))
        #expect(fromEnv.redis.password == "pw" && fromEnv.redis.database == 2)
        let flags = try load(["--port", "9100", "--redis-url=redis://other:1", "--redis-timeout-ms", "750"], env)
        #expect(flags.port == 9100)
        #expect(flags.redis.endpoint == .tcp(host: "other", port: 1))
        #expect(flags.redis.commandTimeout == .milliseconds(750))
    }

    @Test(arguments: [
        (["PORT": "x"], [String](), "PORT"),
        ([:], ["--port", "0"], "PORT"),
        (["REDIS_URL": "mysql://x"], [], "REDIS_URL"),
        (["REDIS_URL": "redis+cluster://a:7000,b:7001/2"], [], "REDIS_URL"),
        ([:], ["--redis-url", "redis+cluster://a:7000,,b:7001"], "REDIS_URL"),
        (["LOG_LEVEL": "verbose"], [], "LOG_LEVEL"),
        (["REDIS_CONNECTIONS": "0"], [], "REDIS_CONNECTIONS"),
        ([:], ["--bogus"], "--bogus"),
        ([:], ["--port"], "PORT"),
    ])
    func badValuesNameTheSetting(environment: [String: String], arguments: [String], setting: String) {
        do {
            _ = try AppConfiguration.load(arguments: arguments, environment: environment)
            Issue.record("accepted \(environment) \(arguments)")
        } catch {
            #expect(error.setting == setting)
            #expect(!"\(error)".contains("\n"))
        }
    }

    @Test func helpListsEverySetting() throws {
        guard case .help(let text) = try AppConfiguration.load(arguments: ["--help"], environment: [:]) else {
            Issue.record("no help")
            return
        }
        for setting in AppConfiguration.settings {
            #expect(text.contains(setting.name))
            #expect(text.contains(setting.flag))
        }
    }
}
