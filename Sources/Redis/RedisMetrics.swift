import Metrics
import Synchronization

/// swift-metrics instruments of the client: command latency (a timer per command name, and per node in cluster mode;
/// `PIPELINE` for batches) and errors by kind. No-ops until the process bootstraps a metrics backend.
enum RedisMetrics {
    /// Timers by command name (and node): creating a metric goes through the backend's registry, too slow per command.
    private static let timers = Mutex<[String: Timer]>([:])

    static func timer(_ command: String, node: String? = nil) -> Timer {
        let key = node.map { command + " " + $0 } ?? command
        return timers.withLock { cache in
            if let timer = cache[key] { return timer }
            var dimensions = [("command", command)]
            if let node { dimensions.append(("node", node)) }
            let timer = Timer(label: "redis_command_duration_seconds", dimensions: dimensions)
            cache[key] = timer
            return timer
        }
    }

    /// A reply to `command`; `node` labels it in cluster mode.
    static func record(_ command: String, node: String? = nil, since start: ContinuousClock.Instant, reply: RESPValue) {
        timer(command, node: node).recordInterval(since: start)
        if case .error(let message) = reply {
            let kind = message.split(separator: " ").first.map(String.init) ?? "ERR"
            Counter(label: "redis_errors_total", dimensions: [("kind", "server"), ("code", kind)] + nodeDimension(node)).increment()
        }
    }

    /// A failure of `command`; `node` labels it in cluster mode.
    static func record(_ command: String, node: String? = nil, since start: ContinuousClock.Instant, error: RedisError) {
        timer(command, node: node).recordInterval(since: start)
        let kind: String
        switch error {
        case .connectionLost: kind = "connection_lost"
        case .unavailable: kind = "unavailable"
        case .timeout: kind = "timeout"
        case .server: kind = "server"
        case .protocolError: kind = "protocol"
        case .shutdown: kind = "shutdown"
        case .crossSlot: kind = "cross_slot"
        }
        Counter(label: "redis_errors_total", dimensions: [("kind", kind), ("code", "")] + nodeDimension(node)).increment()
    }

    private static func nodeDimension(_ node: String?) -> [(String, String)] {
        node.map { [("node", $0)] } ?? []
    }
}

extension Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
