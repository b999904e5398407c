import Logging

/// One script call within a batch: the script, its keys and its arguments.
public struct RedisScriptCall: Sendable {
    public var script: RedisScript
    public var keys: [String]
    public var arguments: [String]

    public init(_ script: RedisScript, keys: [String], arguments: [String]) {
        self.script = script
        self.keys = keys
        self.arguments = arguments
    }
}

extension RedisClient {
    /// Runs `script` with EVALSHA. On NOSCRIPT it sends `SCRIPT LOAD` and the EVALSHA again, pipelined in one
    /// round trip. An error raised by the script throws ``RedisError/server(_:)``.
    @discardableResult
    public func run(_ script: RedisScript, keys: [String] = [], arguments: [String] = []) async throws -> RESPValue {
        let replies = try await run([RedisScriptCall(script, keys: keys, arguments: arguments)])
        if case .error(let message) = replies[0] { throw RedisError.server(message) }
        return replies[0]
    }

    /// Runs several scripts pipelined in one round trip (each atomic on its own) and returns their replies in
    /// order, error replies as values. Scripts Redis does not know yet are loaded and re-run once.
    public func run(_ calls: [RedisScriptCall]) async throws -> [RESPValue] {
        if let cluster { return try await clusterRun(calls, on: cluster) }
        var replies = try await pipeline(calls.map { $0.script.evalsha(keys: $0.keys, arguments: $0.arguments) })
        let missing = replies.indices.filter { replies[$0].errorMessage?.hasPrefix("NOSCRIPT") == true }
        guard !missing.isEmpty else { return replies }
        var retry: [RedisCommand] = []
        var loaded = Set<String>()
        for index in missing where loaded.insert(calls[index].script.sha1).inserted {
            retry.append(RedisCommand("SCRIPT", "LOAD", calls[index].script.source))
        }
        let loads = retry.count
        for index in missing {
            retry.append(calls[index].script.evalsha(keys: calls[index].keys, arguments: calls[index].arguments))
        }
        let retried = try await pipeline(retry)
        for (offset, index) in missing.enumerated() {
            replies[index] = retried[loads + offset]
        }
        if let failedLoad = retried[..<loads].first(where: { $0.errorMessage != nil }) {
            logger.error("SCRIPT LOAD failed", metadata: ["error": "\(failedLoad)"])
        }
        return replies
    }
}
