import Metrics
import NIOCore
import Synchronization

/// Every open HTTP/WebSocket connection of this worker, counted per client address, so limits hold and a stop
/// can close whatever is left when its deadline comes.
///
/// Shared by all event loops; each call is one short critical section.
public final class ConnectionRegistry: Sendable {
    /// Why a connection is over its allowance.
    public enum Refusal: String, Sendable {
        /// The worker holds `MAX_CONNECTIONS` already.
        case maxConnections = "max_connections"
        /// The client address holds `MAX_CONNECTIONS_PER_ADDRESS` already.
        case perAddress = "per_address"
    }

    private struct State {
        var open: [ObjectIdentifier: any Channel] = [:]
        var perAddress: [String: Int] = [:]
    }

    let maxConnections: Int
    let maxPerAddress: Int
    package let trustedProxies: [ClientAddress.Block]
    private let state = Mutex(State())
    private let openGauge = Gauge(label: "http_open_connections")

    public init(settings: ConnectionSettings, trustedProxies: [ClientAddress.Block]) {
        self.maxConnections = settings.maxConnections
        self.maxPerAddress = settings.maxConnectionsPerAddress
        self.trustedProxies = trustedProxies
    }

    /// Open connections right now.
    public var count: Int { state.withLock { $0.open.count } }

    /// Connections `address` holds right now.
    public func count(address: String) -> Int { state.withLock { $0.perAddress[address] ?? 0 } }

    /// Records a connection just accepted. A peer that is not a trusted proxy is counted under its own address at
    /// once (it may never send a complete request); a trusted proxy's connections are counted when their request
    /// head names the client (``attribute(_:forwardedFor:)``). Returns the address counted (give it back to
    /// ``closed(_:addresses:)``) and the refusal when the connection is over a limit; it stays registered either way.
    package func opened(_ channel: any Channel, peer: String?) -> (counted: String?, refusal: Refusal?) {
        let direct = peer.flatMap { ClientAddress.isTrusted($0, trustedProxies) ? nil : ClientAddress.normalized($0) }
        let (total, perAddress) = state.withLock { state -> (Int, Int) in
            state.open[ObjectIdentifier(channel)] = channel
            guard let direct else { return (state.open.count, 0) }
            state.perAddress[direct, default: 0] += 1
            return (state.open.count, state.perAddress[direct]!)
        }
        openGauge.record(total)
        if total > maxConnections { return (direct, .maxConnections) }
        if perAddress > maxPerAddress { return (direct, .perAddress) }
        return (direct, nil)
    }

    /// Counts a trusted proxy's connection under the client address its first request names.
    package func attribute(peer: String?, forwardedFor: String?) -> (counted: String, refusal: Refusal?) {
        let client = ClientAddress.normalized(ClientAddress.resolve(peer: peer, forwardedFor: forwardedFor, trusted: trustedProxies))
        let held = state.withLock { state -> Int in
            state.perAddress[client, default: 0] += 1
            return state.perAddress[client]!
        }
        return (client, held > maxPerAddress ? .perAddress : nil)
    }

    /// Forgets a connection that closed, and the addresses it was counted under.
    package func closed(_ channel: any Channel, addresses: [String]) {
        let total = state.withLock { state -> Int in
            state.open.removeValue(forKey: ObjectIdentifier(channel))
            for address in addresses {
                let left = (state.perAddress[address] ?? 1) - 1
                state.perAddress[address] = left > 0 ? left : nil
            }
            return state.open.count
        }
        openGauge.record(total)
    }

    /// Closes every connection still open (the stop's deadline); returns how many there were.
    @discardableResult
    public func closeAll() -> Int {
        let channels = state.withLock { Array($0.open.values) }
        for channel in channels { channel.close(promise: nil) }
        return channels.count
    }

    /// Counts a refused connection in `/metrics`.
    package static func countRefusal(_ refusal: Refusal, kind: String) {
        Counter(label: "connections_refused_total", dimensions: [("reason", refusal.rawValue), ("kind", kind)]).increment()
    }
}
