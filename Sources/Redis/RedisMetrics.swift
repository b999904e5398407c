import Metrics
import Synchronization

/// swift-metrics instruments of the client: command latency (a timer per command name; `PIPELINE` for batches)
/// and errors by kind. No-ops until the process bootstraps a metrics backend.
enum RedisMetrics {
    /// Timers by command name: creating a metric goes through the backend's registry, too slow per command.
    private static let timers = Mutex<[String: Timer]>([:])

    static func timer(_ command: String) -> Timer {
        timers.withLock { cache in
            if let timer = cache[command] { return timer }
            let timer = Timer(label: "redis_command_duration_seconds", dimensions: [("command", command)])
            cache[command] = timer
            return timer
        }
    }

    static func record(_ command: String, since start: ContinuousClock.Instant, reply: RESPValue) {
        timer(command).recordInterval(since: start)
        if case .error(let message) = reply {
            let kind = message.split(separator: " ").first.map(String.init) ?? "ERR"
            Counter(label: "redis_errors_total", dimensions: [("kind", "server"), ("code", kind)]).increment()
        }
    }

    static func record(_ command: String, since start: ContinuousClock.Instant, error: RedisError) {
        timer(command).recordInterval(since: start)
        let kind: String
        switch error {
        case .connectionLost: kind = "connection_lost"
        case .unavailable: kind = "unavailable"
        case .timeout: kind = "timeout"
        case .server: kind = "server"
        case .protocolError: kind = "protocol"
        case .shutdown: kind = "shutdown"
        }
        Counter(label: "redis_errors_total", dimensions: [("kind", kind), ("code", "")]).increment()
    }
}

extension Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
