import NIOCore

/// Where Redis is and how the client behaves towards it.
public struct RedisConfiguration: Sendable, Equatable {
    /// How to reach the server.
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unixSocket(path: String)
    }

    /// The server's address (in cluster mode, the first seed).
    public var endpoint: Endpoint
    /// Redis Cluster mode when not empty: the seed nodes (any one reachable is enough). Empty: one Redis.
    public var clusterSeeds: [Endpoint] = []
    /// In cluster mode, how often the slot map is read again (it is also read after MOVED and lost nodes).
    public var clusterRefreshInterval: TimeAmount = .seconds(10)
    /// Scripts loaded (`SCRIPT LOAD`) on every connection as it is made, before any command: a restarted server or a
    /// node new to the client (a promoted replica) knows them before a pipeline of dependent scripts arrives, where
    /// one NOSCRIPT would let the later ones run without the earlier. NOSCRIPT stays handled as well.
    public var preloadScripts: [RedisScript] = []
    /// ACL user name for `AUTH user password` (Redis 6+); `nil` sends `AUTH password`.
    public var username: String?
    /// Password; `nil` sends no AUTH.
    public var password: String?
    /// Database number for `SELECT`; 0 sends no SELECT.
    public var database: Int
    /// The bounded wait: how long a command may wait for a connection and then for its reply.
    public var commandTimeout: TimeAmount
    /// How long one TCP connect attempt may take.
    public var connectTimeout: TimeAmount
    /// First delay before reconnecting; doubles on each failed attempt.
    public var reconnectBaseDelay: TimeAmount
    /// Upper bound of the reconnect delay.
    public var reconnectMaxDelay: TimeAmount
    /// Multiplexed connections the client opens for commands (each carries any number of pipelined commands).
    public var connectionCount: Int
    /// Commands that may wait for a connection while Redis is unreachable; beyond that they fail at once.
    public var maxQueuedWhileDisconnected: Int
    /// Whether commands fail at once (``RedisError/unavailable(_:)``) while the last connect attempt failed, instead
    /// of waiting out the bounded wait. Set for a cluster's node connections: a refused node is usually dead or being
    /// replaced, and the caller does better to read the slot map again and go elsewhere than to wait for it.
    public var failFastWhenUnreachable = false

    /// A configuration for `endpoint` with the defaults: 2 s bounded wait, backoff from 50 ms to 1 s, 2 connections.
    public init(
        endpoint: Endpoint,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        commandTimeout: TimeAmount = .seconds(2),
        connectTimeout: TimeAmount = .seconds(2),
        reconnectBaseDelay: TimeAmount = .milliseconds(50),
        reconnectMaxDelay: TimeAmount = .seconds(1),
        connectionCount: Int = 2,
        maxQueuedWhileDisconnected: Int = 10_000
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.commandTimeout = commandTimeout
        self.connectTimeout = connectTimeout
        self.reconnectBaseDelay = reconnectBaseDelay
        self.reconnectMaxDelay = reconnectMaxDelay
        self.connectionCount = max(1, connectionCount)
        self.maxQueuedWhileDisconnected = maxQueuedWhileDisconnected
    }

    /// Parses `redis://[user:password@]host[:port][/db]`, `unix:///path/to/socket[?db=N]`, or
    /// `redis+cluster://[user:password@]host1:port1,host2:port2,...` (Redis Cluster: seed nodes, database 0 only).
    /// User and password may be percent-encoded. Throws ``RedisConfigurationError`` naming what is wrong.
    public init(url: String) throws(RedisConfigurationError) {
        if url.hasPrefix("redis+cluster://") {
            let rest = url.dropFirst("redis+cluster://".count)
            let userinfo = rest.lastIndex(of: "@").map { String(rest[...$0]) } ?? ""
            let hostsAndDatabase = rest.lastIndex(of: "@").map { rest[rest.index(after: $0)...] } ?? rest
            let hosts = hostsAndDatabase.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            if hosts.count == 2, !hosts[1].isEmpty, hosts[1] != "0" {
                throw .init("a Redis Cluster has only database 0: remove '/\(hosts[1])' from the redis+cluster:// URL")
            }
            var seeds: [Endpoint] = []
            var first: RedisConfiguration?
            for seed in hosts[0].split(separator: ",", omittingEmptySubsequences: false) {
                guard !seed.isEmpty else { throw .init("empty seed node in '\(url)'") }
                let parsed = try RedisConfiguration(url: "redis://\(userinfo)\(seed)")
                seeds.append(parsed.endpoint)
                if first == nil { first = parsed }
            }
            guard var configuration = first else { throw .init("no seed node in '\(url)'") }
            configuration.clusterSeeds = seeds
            self = configuration
            return
        }
        if url.hasPrefix("unix://") {
            var rest = String(url.dropFirst("unix://".count))
            var database = 0
            if let q = rest.firstIndex(of: "?") {
                let query = rest[rest.index(after: q)...]
                rest = String(rest[..<q])
                for pair in query.split(separator: "&") {
                    let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    if kv.count == 2, kv[0] == "db" {
                        guard let db = Int(kv[1]), db >= 0 else { throw .init("invalid database number '\(kv[1])'") }
                        database = db
                    }
                }
            }
            guard rest.hasPrefix("/"), rest.count > 1 else {
                throw .init("a unix socket URL needs an absolute path, e.g. unix:///run/redis.sock")
            }
            self.init(endpoint: .unixSocket(path: rest), database: database)
            return
        }
        guard url.hasPrefix("redis://") else {
            throw .init("expected redis://[user:password@]host:port[/db], unix:///path or redis+cluster://host:port,host:port,..., got '\(url)'")
        }
        var rest = Substring(url.dropFirst("redis://".count))
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                let user = String(userinfo[..<colon])
                username = user.isEmpty ? nil : try Self.percentDecoded(user)
                password = try Self.percentDecoded(String(userinfo[userinfo.index(after: colon)...]))
            } else if !userinfo.isEmpty {
                // redis://secret@host: a password alone, as redis-cli reads it.
                password = try Self.percentDecoded(String(userinfo))
            }
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let dbText = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !dbText.isEmpty {
                guard let db = Int(dbText), db >= 0 else { throw .init("invalid database number '\(dbText)'") }
                database = db
            }
        }
        var host = String(rest)
        var port = 6379
        if host.hasPrefix("[") {
            // [::1]:6379
            guard let close = host.firstIndex(of: "]") else { throw .init("unterminated IPv6 address in '\(url)'") }
            let after = host[host.index(after: close)...]
            let literal = String(host[host.index(after: host.startIndex)..<close])
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else {
                    throw .init("invalid port '\(after.dropFirst())'")
                }
                port = p
            }
            host = literal
        } else if let colon = host.lastIndex(of: ":") {
            let portText = host[host.index(after: colon)...]
            guard let p = Int(portText), (1...65535).contains(p) else { throw .init("invalid port '\(portText)'") }
            port = p
            host = String(host[..<colon])
        }
        guard !host.isEmpty else { throw .init("missing host in '\(url)'") }
        self.init(endpoint: .tcp(host: host, port: port), username: username, password: password, database: database)
    }

    private static func percentDecoded(_ text: String) throws(RedisConfigurationError) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let h = iterator.next(), let l = iterator.next(),
                      let value = UInt8(String(decoding: [h, l], as: UTF8.self), radix: 16) else {
                    throw .init("invalid percent-encoding in credentials")
                }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension RedisConfiguration.Endpoint: CustomStringConvertible {
    public var description: String {
        switch self {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unixSocket(let path): return "unix://\(path)"
        }
    }
}

/// A Redis URL that could not be understood.
public struct RedisConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, in one line.
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}
