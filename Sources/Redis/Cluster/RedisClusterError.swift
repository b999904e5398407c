/// What a cluster node's error reply asks of the client: go elsewhere, or try again later.
public enum RedisClusterError: Sendable, Equatable {
    /// `MOVED <slot> <host:port>`: the slot lives at another node for good; update the map and resend there.
    case moved(slot: Int, to: RedisClusterTopology.Endpoint)
    /// `ASK <slot> <host:port>`: the slot is migrating and this key is already there; send `ASKING` and the command
    /// together to that node, once, without updating the map.
    case ask(slot: Int, to: RedisClusterTopology.Endpoint)
    /// `TRYAGAIN`: a multi-key call met a slot in mid-migration; retry after a pause.
    case tryAgain
    /// `CLUSTERDOWN`: the cluster cannot serve (a failover under way); retry after a pause, refreshing the map.
    case clusterDown
    /// `LOADING`: the node is loading its data set; retry after a pause.
    case loading
    /// `MASTERDOWN`: the primary of a replica is down; retry after a pause.
    case masterDown

    /// The redirect or retry an error reply asks for; `nil` for any other error.
    public init?(errorReply message: String) {
        let words = message.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: true)
        guard let kind = words.first else { return nil }
        switch kind {
        case "MOVED", "ASK":
            guard words.count >= 3, let slot = Int(words[1]), (0..<RedisHashSlot.count).contains(slot),
                  let endpoint = Self.endpoint(words[2]) else { return nil }
            self = kind == "MOVED" ? .moved(slot: slot, to: endpoint) : .ask(slot: slot, to: endpoint)
        case "TRYAGAIN": self = .tryAgain
        case "CLUSTERDOWN": self = .clusterDown
        case "LOADING": self = .loading
        case "MASTERDOWN": self = .masterDown
        default: return nil
        }
    }

    /// The label used in metrics and logs.
    public var kind: String {
        switch self {
        case .moved: "MOVED"
        case .ask: "ASK"
        case .tryAgain: "TRYAGAIN"
        case .clusterDown: "CLUSTERDOWN"
        case .loading: "LOADING"
        case .masterDown: "MASTERDOWN"
        }
    }

    /// `host:port`, `[v6]:port`, or `:port` (Redis leaves the host out when the client should reuse the one it asked;
    /// the caller fills it in).
    private static func endpoint(_ text: Substring) -> RedisClusterTopology.Endpoint? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return RedisClusterTopology.Endpoint(host: host, port: port)
    }
}
