// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "presence",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "presence-server", targets: ["PresenceServer"]),
        .library(name: "Redis", targets: ["Redis"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // C shim over Debian's libhiredis-dev: hiredis formats commands and parses replies, nothing else.
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // A Redis client that knows nothing about the service: RESP via hiredis, I/O via SwiftNIO.
        .target(
            name: "Redis",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // The domain only: services, rules, storage protocols and events. No Redis, NIO, Hummingbird or HTTP client:
        // ops/check-layers fails the build's tests when a file here imports one.
        .target(
            name: "PresenceCore",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // The storage protocols on Redis: stores, key names, the Lua scripts (resources) and their loading.
        .target(
            name: "PresenceRedis",
            dependencies: [
                "PresenceCore", "Redis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            resources: [.copy("Scripts")],
            swiftSettings: swiftSettings
        ),
        // The other adapters to the outside world: the webhook sender and the AI provider on AsyncHTTPClient, bcrypt.
        .target(
            name: "PresenceIntegrations",
            dependencies: [
                "PresenceCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
            ],
            swiftSettings: swiftSettings
        ),
        // The realtime layer: the Pusher protocol and ryOS's /ws face, the hub, the sockets. No HTTP framework, no Redis:
        // pub/sub comes through the RealtimeFeed protocol.
        .target(
            name: "PresenceRealtime",
            dependencies: [
                "PresenceCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The HTTP layer: controllers and middleware on Hummingbird. No Redis.
        .target(
            name: "PresenceHTTP",
            dependencies: [
                "PresenceCore", "PresenceRealtime",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The top-level openapi.yaml is a link to this file; the server serves it at GET /openapi.yaml.
            resources: [.copy("Resources/openapi.yaml")],
            swiftSettings: swiftSettings
        ),
        // The composition root: configuration, the NIO server and its connection guard, the console and the web
        // assets (Web/: the web client and the operator console, served at / and /console), wiring every layer.
        .target(
            name: "PresenceApp",
            dependencies: [
                "Redis", "PresenceCore", "PresenceRedis", "PresenceIntegrations", "PresenceRealtime", "PresenceHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Web")],
            swiftSettings: swiftSettings
        ),
        // The thin executable.
        .executableTarget(
            name: "PresenceServer",
            dependencies: ["PresenceApp"],
            swiftSettings: swiftSettings
        ),
        // Benchmark driver for bench/run redis-client: the redis-benchmark workload through this client.
        .executableTarget(
            name: "redis-bench",
            dependencies: ["Redis", .product(name: "NIOCore", package: "swift-nio")],
            path: "bench/RedisBench",
            swiftSettings: swiftSettings
        ),
        // bench's compiled WebSocket subscriber load generator (Pusher or nchan), with its publisher: not in the server.
        .executableTarget(
            name: "delivery-load",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "bench/DeliveryLoad",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RedisTests",
            dependencies: [
                "Redis", "CHiredis", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Scripts")],
            swiftSettings: swiftSettings
        ),
        // Domain rules against in-memory implementations of the storage protocols: no Redis, no network.
        .testTarget(
            name: "PresenceCoreTests",
            dependencies: [
                "PresenceCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Redis stores and scripts against a real redis-server (TEST_REDIS_URL).
        .testTarget(
            name: "PresenceRedisTests",
            dependencies: [
                "PresenceRedis", "PresenceCore", "Redis", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The realtime state machines: no sockets, no Redis.
        .testTarget(
            name: "PresenceRealtimeTests",
            dependencies: [
                "PresenceRealtime", "PresenceCore", "AsyncTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The assembled application: routes through HummingbirdTesting, the server's guard, races on a real Redis.
        .testTarget(
            name: "PresenceAppTests",
            dependencies: [
                "PresenceApp", "PresenceHTTP", "PresenceRealtime", "PresenceRedis", "PresenceCore", "Redis", "TestSupport",
                "AsyncTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test helper shared by test targets: a gate that holds a call in flight (no clocks, no Redis).
        .target(
            name: "AsyncTestSupport",
            path: "Tests/AsyncTestSupport",
            swiftSettings: swiftSettings
        ),
        // Test harness: starts real redis-server processes on free ports.
        .target(
            name: "TestSupport",
            dependencies: ["Redis", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
    ]
)
