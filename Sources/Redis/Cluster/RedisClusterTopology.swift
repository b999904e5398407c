/// Which primary serves which slots, and its replicas: a snapshot of a Redis Cluster's layout, read from
/// `CLUSTER SHARDS` (Redis 7.0+) or `CLUSTER SLOTS` (older servers). A plain value: parsing, lookups and the choice
/// between several nodes' answers are tested without a socket.
public struct RedisClusterTopology: Sendable, Equatable {
    /// A node's address.
    public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// `host:port` (IPv6 hosts in brackets).
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// One primary, its replicas and the slot ranges it serves.
    public struct Shard: Sendable, Equatable {
        public var primary: Endpoint
        /// `false` when the cluster reports the primary failed (its slots are not served until a failover).
        public var primaryHealthy: Bool
        public var replicas: [Endpoint]
        public var slots: [ClosedRange<Int>]

        public init(primary: Endpoint, primaryHealthy: Bool = true, replicas: [Endpoint] = [], slots: [ClosedRange<Int>]) {
            self.primary = primary
            self.primaryHealthy = primaryHealthy
            self.replicas = replicas
            self.slots = slots
        }
    }

    /// Shards that serve at least one slot, ordered by their first slot.
    public private(set) var shards: [Shard]
    /// Slot → index in ``shards``, or `noShard`.
    private var owners: [UInt16]
    private static let noShard = UInt16.max

    /// Builds the slot map. (A server never claims a slot twice in one reply; if one did, the shard later in slot order
    /// would win.)
    public init(shards: [Shard]) {
        self.shards = shards.filter { !$0.slots.isEmpty }.sorted { ($0.slots.map(\.lowerBound).min() ?? 0) < ($1.slots.map(\.lowerBound).min() ?? 0) }
        owners = [UInt16](repeating: Self.noShard, count: RedisHashSlot.count)
        for (index, shard) in self.shards.enumerated() {
            for range in shard.slots {
                for slot in max(0, range.lowerBound)...min(RedisHashSlot.count - 1, range.upperBound) {
                    owners[slot] = UInt16(index)
                }
            }
        }
    }

    /// The primary serving `slot`, if any.
    public func primary(forSlot slot: Int) -> Endpoint? {
        let owner = owners[slot]
        return owner == Self.noShard ? nil : shards[Int(owner)].primary
    }

    /// Every primary, in slot order.
    public var primaries: [Endpoint] { shards.map(\.primary) }

    /// Slots assigned to a primary the cluster does not report failed (16384 when the cluster serves every slot).
    public var servedSlots: Int {
        var served = 0
        for owner in owners where owner != Self.noShard && shards[Int(owner)].primaryHealthy { served += 1 }
        return served
    }

    /// Moves one slot to `primary` (after a MOVED redirect), adding the primary as a shard when it is new.
    public mutating func assign(slot: Int, to primary: Endpoint) {
        if let index = shards.firstIndex(where: { $0.primary == primary }) {
            owners[slot] = UInt16(index)
            shards[index].slots.append(slot...slot)
        } else {
            shards.append(Shard(primary: primary, slots: [slot...slot]))
            owners[slot] = UInt16(shards.count - 1)
        }
    }

    /// The layout of the nodes that answered, leaving out answers that are stale about a node's own role: a node learns
    /// its demotion first (a manual failover or a finished migration tells it at once; gossip tells the others later),
    /// so an answer naming as a slot's primary a node whose own answer (of a working cluster) gives it no slots is older
    /// than that node's. Among the rest, ``choose(_:)``; all of them when every answer is stale about someone.
    public static func choose(answersByNode answers: [(node: Endpoint, topology: RedisClusterTopology)]) -> RedisClusterTopology? {
        let demoted = Set(answers.filter { $0.topology.servedSlots > 0 && !$0.topology.primaries.contains($0.node) }.map(\.node))
        let current = answers.filter { answer in !answer.topology.primaries.contains { demoted.contains($0) } }
        return choose((current.isEmpty ? answers : current).map(\.topology))
    }

    /// The layout most of the answering nodes agree on; among equally common ones, the one serving the most slots.
    /// `nil` when there is no answer.
    public static func choose(_ answers: [RedisClusterTopology]) -> RedisClusterTopology? {
        var groups: [(topology: RedisClusterTopology, votes: Int)] = []
        for answer in answers {
            if let index = groups.firstIndex(where: { $0.topology == answer }) {
                groups[index].votes += 1
            } else {
                groups.append((answer, 1))
            }
        }
        return groups.max { ($0.votes, $0.topology.servedSlots) < ($1.votes, $1.topology.servedSlots) }?.topology
    }

    public static func == (lhs: RedisClusterTopology, rhs: RedisClusterTopology) -> Bool {
        lhs.owners == rhs.owners && Set(lhs.shards.map(\.primary)) == Set(rhs.shards.map(\.primary))
            && lhs.shards.map(\.primaryHealthy) == rhs.shards.map(\.primaryHealthy)
    }
}
