import Foundation
import Logging
import Metrics
import Redis

/// Publishes events to Redis pub/sub, one Redis channel per client channel (`ch:<channel>`), so every worker
/// can deliver them. Publishing is best effort: a failure is logged, never fails the request that caused it
/// (the state change already happened).
public struct RedisEventPublisher: EventPublisher {
    let redis: RedisClient
    let logger: Logger

    public init(redis: RedisClient, logger: Logger) {
        self.redis = redis
        self.logger = logger
    }

    /// The PUBLISH commands for `events`, to send in a pipeline of the caller's.
    public static func commands(for events: [BroadcastEvent]) -> [RedisCommand] {
        events.map { RedisCommand("PUBLISH", RedisKeys.broadcastChannel($0.channel), $0.payload) }
    }

    /// Tells every worker that someone's access to some channels may have ended (see ``AccessChange``).
    public func publish(_ change: AccessChange) async {
        do {
            _ = try await redis.send(RedisCommand("PUBLISH", RedisKeys.pusherControl, change.payload))
        } catch {
            logger.warning("Publishing an access change failed", metadata: ["error": "\(error)"])
        }
    }

    public func deliver(_ events: [BroadcastEvent]) async throws {
        guard !events.isEmpty else { return }
        let replies = try await redis.pipeline(Self.commands(for: events))
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
    }

    public func terminate(user: String) async throws {
        try await redis.send(RedisCommand("PUBLISH", RedisKeys.pusherControl, JSONValue.object(["terminate": .string(user)]).serialized))
    }

    /// The order holds on a Redis Cluster too: `PUBLISH` has no key, so every batch with one `orderKey` goes to the
    /// node and the connection that key picks (``RedisClient/pipelineDetached(_:orderKey:timeout:completion:)``).
    public func publishDetached(_ events: [BroadcastEvent], orderKey: String) {
        guard !events.isEmpty else { return }
        redis.pipelineDetached(Self.commands(for: events), orderKey: orderKey) { [logger] result in
            let failed: String? = switch result {
            case .success(let replies): replies.lazy.compactMap(\.errorMessage).first
            case .failure(let error): "\(error)"
            }
            if let failed {
                Counter(label: "switch_followup_failures_total").increment()
                logger.warning("Publish failed", metadata: ["events": "\(events.count)", "error": "\(failed)"])
            }
        }
    }

    /// Publishes `events` in one pipelined round trip.
    public func publish(_ events: [BroadcastEvent]) async {
        guard !events.isEmpty else { return }
        let commands = Self.commands(for: events)
        do {
            let replies = try await redis.pipeline(commands)
            for (event, reply) in zip(events, replies) where reply.errorMessage != nil {
                logger.warning("Publish failed", metadata: ["event": "\(event.event)", "error": "\(reply)"])
            }
        } catch {
            logger.warning("Publish failed", metadata: ["events": "\(events.count)", "error": "\(error)"])
        }
    }
}
