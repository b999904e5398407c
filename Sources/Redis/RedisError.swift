/// Every way a Redis call can fail.
public enum RedisError: Error, Sendable, Equatable {
    /// The connection closed while the command was in flight; it may or may not have run.
    case connectionLost
    /// No connection to Redis could be made within the bounded wait; the command was never sent.
    /// Carries the reason of the last failed attempt (e.g. "connection refused").
    case unavailable(String)
    /// The command was sent but no reply came within the bounded wait.
    case timeout
    /// Redis answered with an error reply; carries Redis's message (e.g. `"WRONGTYPE Operation against ..."`).
    case server(String)
    /// The bytes from Redis could not be parsed, or a reply had an unexpected shape.
    case protocolError(String)
    /// The client was shut down.
    case shutdown
    /// The keys of one call live in different cluster slots (give them one hash tag); the call was never sent.
    case crossSlot([String])
}

extension RedisError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .connectionLost: return "Redis connection lost while the command was in flight"
        case .unavailable(let reason): return "Redis unavailable: \(reason)"
        case .timeout: return "Redis did not answer in time"
        case .server(let message): return "Redis error: \(message)"
        case .protocolError(let message): return "Redis protocol error: \(message)"
        case .shutdown: return "Redis client shut down"
        case .crossSlot(let keys): return "Redis call refused: its keys span cluster slots (\(keys.joined(separator: ", ")))"
        }
    }
}

extension RedisError {
    /// `true` when Redis could not be reached or did not answer (worth retrying later), as opposed to an error
    /// reply or a malformed one.
    public var isUnavailability: Bool {
        switch self {
        case .connectionLost, .unavailable, .timeout, .shutdown: return true
        case .server(let message):
            // A cluster that cannot serve for now (failover, migration, loading) is unavailable, not wrong.
            switch RedisClusterError(errorReply: message) {
            case .tryAgain?, .clusterDown?, .loading?, .masterDown?: return true
            case .moved?, .ask?, nil: return false
            }
        case .protocolError, .crossSlot: return false
        }
    }
}
