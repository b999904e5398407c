import Foundation
import Redis
#if canImport(Glibc)
import Glibc
#endif

/// A real `redis-server` child process on a free loopback port, for tests. Never a mock.
///
/// Data goes to a fresh directory under the system temp dir (prefix `presence-test-redis-`), so `./ops/test`
/// can find and stop stragglers if a test run crashes.
public final class RedisServer: @unchecked Sendable {
    public let port: Int
    public let directory: URL
    public let extraArguments: [String]
    private var process: Process?
    private let lock = NSLock()

    /// `redis://127.0.0.1:<port>`.
    public var url: String { "redis://127.0.0.1:\(port)" }

    /// Starts a server and waits until it accepts connections.
    public static func start(_ extraArguments: [String] = []) throws -> RedisServer {
        let server = try RedisServer(port: freePort(), extraArguments: extraArguments)
        try server.launch()
        return server
    }

    private init(port: Int, extraArguments: [String]) throws {
        self.port = port
        self.extraArguments = extraArguments
        self.directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("presence-test-redis-\(port)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// Starts the process (again) on the same port.
    public func launch() throws {
        lock.lock()
        defer { lock.unlock() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.which("redis-server"))
        process.arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", directory.path, "--daemonize", "no", "--loglevel", "warning",
            "--logfile", directory.appendingPathComponent("redis.log").path,
        ] + extraArguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(10)
        while !Self.canConnect(port: port) {
            guard process.isRunning, Date() < deadline else {
                throw TestHarnessError("redis-server did not start on port \(port)")
            }
            usleep(10_000)
        }
    }

    /// Sends a signal to the process (SIGKILL, SIGSTOP, SIGCONT, ...).
    public func signal(_ signal: Int32) {
        lock.lock()
        defer { lock.unlock() }
        if let process, process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// Kills the process at once (SIGKILL) and waits for it to go.
    public func kill9() {
        lock.lock()
        let process = self.process
        lock.unlock()
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Stops the process and removes its directory.
    public func stop() {
        kill9()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit {
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// A port nothing listens on right now.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestHarnessError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw TestHarnessError("bind() failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// `true` when something accepts TCP connections on 127.0.0.1:`port`.
    public static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return result == 0
    }

    static func which(_ name: String) throws -> String {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/usr/local/bin").split(separator: ":")
        for directory in paths + ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw TestHarnessError("\(name) not found on PATH; run ./ops/test, which installs it")
    }
}

/// The Redis shared by tests that do not need their own process: `TEST_REDIS_URL` when `./ops/test` set it,
/// else one server started on first use for this test process.
public enum SharedRedis {
    private static let server: Result<RedisServer, any Error>? = {
        if ProcessInfo.processInfo.environment["TEST_REDIS_URL"] != nil { return nil }
        return Result { try RedisServer.start() }
    }()

    /// The shared server's URL.
    public static func url() throws -> String {
        if let url = ProcessInfo.processInfo.environment["TEST_REDIS_URL"] { return url }
        return try server!.get().url
    }

    /// A configuration for the shared server, with a test's waits (``RedisConfiguration/forTests(url:)``).
    public static func configuration() throws -> RedisConfiguration {
        try RedisConfiguration.forTests(url: url())
    }
}

/// A unique key prefix so parallel tests on one Redis never collide.
public func uniquePrefix(_ name: String = "t") -> String {
    "test:\(name):\(UUID().uuidString.prefix(8)):"
}

public struct TestHarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
