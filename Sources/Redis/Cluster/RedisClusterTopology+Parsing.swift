extension RedisClusterTopology {
    /// Reads a `CLUSTER SHARDS` reply (Redis 7.0+). `answeredBy` fills in a node address the server leaves out
    /// (`endpoint` `?` or empty, as a node announces before it knows its own address).
    public static func parse(shards reply: RESPValue, answeredBy: Endpoint) throws -> RedisClusterTopology {
        guard let list = reply.array else { throw RedisError.protocolError("unexpected CLUSTER SHARDS reply \(reply)") }
        var shards: [Shard] = []
        for item in list {
            let fields = try pairs(item, what: "CLUSTER SHARDS shard")
            guard let flatSlots = fields["slots"]?.array, flatSlots.count % 2 == 0, let nodes = fields["nodes"]?.array else {
                throw RedisError.protocolError("unexpected CLUSTER SHARDS shard \(item)")
            }
            var ranges: [ClosedRange<Int>] = []
            for index in stride(from: 0, to: flatSlots.count, by: 2) {
                guard let start = flatSlots[index].int, let end = flatSlots[index + 1].int, 0 <= start, start <= end,
                      end < RedisHashSlot.count else {
                    throw RedisError.protocolError("bad slot range in CLUSTER SHARDS \(item)")
                }
                ranges.append(start...end)
            }
            var primary: (Endpoint, Bool)?
            var replicas: [Endpoint] = []
            for node in nodes {
                let info = try pairs(node, what: "CLUSTER SHARDS node")
                guard let port = info["port"]?.int ?? info["tls-port"]?.int, let role = info["role"]?.string else {
                    throw RedisError.protocolError("unexpected CLUSTER SHARDS node \(node)")
                }
                let endpoint = Endpoint(host: host(info["endpoint"]?.string, info["ip"]?.string, answeredBy), port: port)
                let health = info["health"]?.string ?? "online"
                if role == "master" {
                    let healthy = health != "fail" && health != "failed"
                    // A failed old primary may still be listed beside the replica that replaced it: the healthy one wins.
                    if primary == nil || (healthy && primary?.1 == false) { primary = (endpoint, healthy) }
                } else if health == "online" {
                    replicas.append(endpoint)
                }
            }
            // A shard without a primary (all failed and not yet replaced) serves nothing.
            guard let (endpoint, healthy) = primary else { continue }
            shards.append(Shard(primary: endpoint, primaryHealthy: healthy, replicas: replicas, slots: ranges))
        }
        return RedisClusterTopology(shards: shards)
    }

    /// Reads a `CLUSTER SLOTS` reply (the fallback for servers without `CLUSTER SHARDS`).
    public static func parse(slots reply: RESPValue, answeredBy: Endpoint) throws -> RedisClusterTopology {
        guard let list = reply.array else { throw RedisError.protocolError("unexpected CLUSTER SLOTS reply \(reply)") }
        var shards: [Endpoint: Shard] = [:]
        var order: [Endpoint] = []
        for item in list {
            guard let entry = item.array, entry.count >= 3, let start = entry[0].int, let end = entry[1].int,
                  0 <= start, start <= end, end < RedisHashSlot.count else {
                throw RedisError.protocolError("unexpected CLUSTER SLOTS entry \(item)")
            }
            let nodes = try entry[2...].map { node -> Endpoint in
                guard let fields = node.array, fields.count >= 2, let port = fields[1].int else {
                    throw RedisError.protocolError("unexpected CLUSTER SLOTS node \(node)")
                }
                return Endpoint(host: host(fields[0].string, nil, answeredBy), port: port)
            }
            let primary = nodes[0]
            if shards[primary] == nil {
                shards[primary] = Shard(primary: primary, replicas: Array(nodes.dropFirst()), slots: [])
                order.append(primary)
            }
            shards[primary]?.slots.append(start...end)
        }
        return RedisClusterTopology(shards: order.compactMap { shards[$0] })
    }

    /// A reply given as a flat list of name, value, name, value.
    private static func pairs(_ value: RESPValue, what: String) throws -> [String: RESPValue] {
        guard let flat = value.array, flat.count % 2 == 0 else { throw RedisError.protocolError("unexpected \(what) \(value)") }
        var fields: [String: RESPValue] = [:]
        for index in stride(from: 0, to: flat.count, by: 2) {
            guard let name = flat[index].string else { throw RedisError.protocolError("unexpected \(what) \(value)") }
            fields[name] = flat[index + 1]
        }
        return fields
    }

    private static func host(_ endpoint: String?, _ ip: String?, _ answeredBy: Endpoint) -> String {
        for candidate in [endpoint, ip] {
            if let candidate, !candidate.isEmpty, candidate != "?" { return candidate }
        }
        return answeredBy.host
    }
}
