import PresenceCore
import Foundation
import Logging
import Metrics
import Redis

/// Publishes events to Redis pub/sub, one Redis channel per client channel (`ch:<channel>`), so every worker
/// can deliver them: `PUBLISH` on one Redis, `SPUBLISH` on a cluster (to the primary of the channel's slot, where every
/// worker subscribed to it has its sharded subscription). Publishing is best effort: a failure is logged, never fails the request that caused it
/// (the state change already happened).
///
/// With webhooks on, the events that stand for webhook events (member events on presence channels, client events:
/// ``WebhookEvent/init(broadcast:)``) are written to the webhook outbox in the same pipeline as their publish.
public struct RedisEventPublisher: EventPublisher {
    let redis: RedisClient
    let logger: Logger
    let webhooks: RedisWebhookOutbox?

    public init(redis: RedisClient, logger: Logger, webhooks: RedisWebhookOutbox? = nil) {
        self.redis = redis
        self.logger = logger
        self.webhooks = webhooks
    }

    /// The publish commands for `events`, to send in a pipeline: one message per event (none for webhook-only ones).
    func commands(for events: [BroadcastEvent]) -> [RedisCommand] {
        events.filter { !$0.webhookOnly }.map { redis.publishCommand($0.payload, to: RedisKeys.broadcastChannel($0.channel)) }
    }

    /// One publish per channel: several events on one channel go in one message (``BroadcastEvent/payload(_:)``), as a
    /// switch between two public rooms updates both on `chats-public`.
    func batchedCommands(for events: [BroadcastEvent]) -> [RedisCommand] {
        BroadcastEvent.byChannel(events.filter { !$0.webhookOnly }).map {
            redis.publishCommand(BroadcastEvent.payload($0.events), to: RedisKeys.broadcastChannel($0.channel))
        }
    }

    /// The outbox writes for the webhook events among `events` (none when webhooks are off).
    func webhookCommands(for events: [BroadcastEvent]) -> [RedisCommand] {
        guard let webhooks else { return [] }
        return webhooks.appendCommands(for: events.compactMap(WebhookEvent.init(broadcast:)))
    }

    /// Tells every worker that someone's access to some channels may have ended (see ``AccessChange``).
    public func publish(_ change: AccessChange) async {
        do {
            _ = try await redis.send(redis.publishCommand(change.payload, to: RedisKeys.pusherControl))
        } catch {
            logger.warning("Publishing an access change failed", metadata: ["error": "\(error)"])
        }
    }

    /// Events through Pusher's HTTP API: on a cache channel (``CacheChannels``) the event is also kept as the channel's
    /// last, just before it is published, so a subscriber that misses the publish finds it in the cache.
    public func deliver(_ events: [BroadcastEvent]) async throws {
        guard !events.isEmpty else { return }
        var pipeline: [RedisCommand] = []
        for (event, publish) in zip(events.filter { !$0.webhookOnly }, commands(for: events)) {
            if CacheChannels.isCache(event.channel) {
                pipeline.append(RedisCommand(
                    "SET", RedisKeys.channelCache(event.channel), event.clientMessage, "PX", String(CacheChannels.ttl.milliseconds)
                ))
            }
            pipeline.append(publish)
        }
        pipeline += webhookCommands(for: events)
        let replies = try await redis.pipeline(pipeline)
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
    }

    public func terminate(user: String) async throws {
        try await redis.send(redis.publishCommand(JSONValue.object(["terminate": .string(user)]).serialized, to: RedisKeys.pusherControl))
    }

    public func signOut(user: String) async throws {
        let reply = try await redis.send(redis.publishCommand(JSONValue.object(["signout": .string(user)]).serialized, to: RedisKeys.pusherControl))
        if let message = reply.errorMessage { throw RedisError.server(message) }
    }

    /// The order per channel holds on a Redis Cluster too: a channel's `SPUBLISH` always goes to the primary of its
    /// slot, on the connection `orderKey` picks there (``RedisClient/pipelineDetached(_:orderKey:timeout:completion:)``);
    /// events on different channels were never ordered for a client anyway.
    public func publishDetached(_ events: [BroadcastEvent], orderKey: String) {
        guard !events.isEmpty else { return }
        redis.pipelineDetached(batchedCommands(for: events) + webhookCommands(for: events), orderKey: orderKey) { [logger] result in
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
        let commands = commands(for: events) + webhookCommands(for: events)
        do {
            let replies = try await redis.pipeline(commands)
            for reply in replies where reply.errorMessage != nil {
                logger.warning("Publish failed", metadata: ["events": "\(events.map(\.event))", "error": "\(reply)"])
            }
        } catch {
            logger.warning("Publish failed", metadata: ["events": "\(events.count)", "error": "\(error)"])
        }
    }
}
