import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real Redis Cluster for tests: `primaries` × (1 + `replicasPerPrimary`) `redis-server --cluster-enabled yes`
/// children on free loopback ports (cluster bus ports free too), joined with `redis-cli --cluster create`, and waited
/// on until every node says `cluster_state:ok`. Never a mock.
public final class RedisClusterServers: @unchecked Sendable {
    /// Every node, primaries first as `redis-cli --cluster create` assigns them.
    public let nodes: [RedisServer]

    /// Starts the nodes and creates the cluster, on a thread of its own: the waiting here blocks, and a blocked thread
    /// of Swift's small cooperative pool would stall every other test running meanwhile.
    public static func start(primaries: Int = 3, replicasPerPrimary: Int = 1, nodeTimeoutMilliseconds: Int = 2000) async throws -> RedisClusterServers {
        try await offThread {
            try startBlocking(primaries: primaries, replicasPerPrimary: replicasPerPrimary, nodeTimeoutMilliseconds: nodeTimeoutMilliseconds)
        }
    }

    /// `redis-cli` with `arguments`, on a thread of its own (see ``start(primaries:replicasPerPrimary:nodeTimeoutMilliseconds:)``).
    @discardableResult
    public func cli(_ arguments: [String]) async throws -> String {
        try await offThread { try self.redisCLI(arguments) }
    }

    /// ``waitUntilOKBlocking(seconds:)`` on a thread of its own.
    public func waitUntilOK(seconds: Double = 60) async throws {
        try await offThread { try self.waitUntilOKBlocking(seconds: seconds) }
    }

    private static func startBlocking(primaries: Int, replicasPerPrimary: Int, nodeTimeoutMilliseconds: Int) throws -> RedisClusterServers {
        var nodes: [RedisServer] = []
        do {
            for _ in 0..<(primaries * (1 + replicasPerPrimary)) {
                nodes.append(try RedisServer.start([
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", String(nodeTimeoutMilliseconds),
                    "--cluster-port", String(try RedisServer.freePort()),
                ]))
            }
            let cluster = RedisClusterServers(nodes: nodes)
            try cluster.redisCLI(["--cluster", "create"] + nodes.map { "127.0.0.1:\($0.port)" }
                + ["--cluster-replicas", String(replicasPerPrimary), "--cluster-yes"])
            try cluster.waitUntilOKBlocking()
            return cluster
        } catch {
            nodes.forEach { $0.stop() }
            throw error
        }
    }

    private init(nodes: [RedisServer]) {
        self.nodes = nodes
    }

    /// `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...`.
    public var url: String { "redis+cluster://" + nodes.map { "127.0.0.1:\($0.port)" }.joined(separator: ",") }

    /// Waits until every node reports `cluster_state:ok` and sees every replica in sync (`CLUSTER SHARDS` shows no node
    /// loading or failed), at most `seconds`.
    public func waitUntilOKBlocking(seconds: Double = 60) throws {
        let deadline = Date().addingTimeInterval(seconds)
        for node in nodes {
            while !(((try? redisCLI(["-p", String(node.port), "cluster", "info"]))?.contains("cluster_state:ok") ?? false)
                && ((try? redisCLI(["-p", String(node.port), "cluster", "shards"])).map { !$0.contains("loading") && !$0.contains("fail") } ?? false)) {
                guard Date() < deadline else { throw TestHarnessError("node \(node.port) did not reach cluster_state:ok") }
                usleep(100_000)
            }
        }
    }

    /// Runs `redis-cli` with `arguments`; returns its output, throws on a non-zero exit. Blocks: from async code use
    /// ``cli(_:)``.
    @discardableResult
    public func redisCLI(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try RedisServer.which("redis-cli"))
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw TestHarnessError("redis-cli \(arguments.joined(separator: " ")) failed: \(text)")
        }
        return text
    }

    /// Stops every node and removes their directories.
    public func stop() {
        nodes.forEach { $0.stop() }
    }
}

/// Runs blocking `body` on a new thread and resumes with its result, leaving the cooperative pool free.
func offThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
