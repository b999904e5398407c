import PresenceCore
import Foundation
import Logging
import Metrics
import Redis

/// Publishes events to Redis pub/sub, one Redis channel per client channel (`ch:{<channel>}`), so every worker
/// can deliver them: `PUBLISH` on one Redis, `SPUBLISH` on a cluster (to the primary of the channel's slot, where every
/// worker subscribed to it has its sharded subscription). Publishing is best effort: a failure is logged, never fails the request that caused it
/// (the state change already happened).
///
/// With webhooks on, the events that stand for webhook events (member events on presence channels, client events:
/// ``WebhookEvent/init(broadcast:)``) are written to the webhook outbox in the same pipeline as their publish.
///
/// On a recoverable channel (``RecoveryPolicy``) an event is appended to the channel's log and published by one script
/// on the channel's slot, which gives it its offset (``RedisChannelRecovery``).
public struct RedisEventPublisher: EventPublisher {
    let redis: RedisClient
    let logger: Logger
    let webhooks: RedisWebhookOutbox?
    /// Recoverable channels (``RecoveryPolicy``): their events are appended to the channel's log and published in one
    /// script (``RedisChannelRecovery/publishCall(channel:payloads:)``) instead of a plain publish. `nil`: none.
    let recovery: RedisChannelRecovery?

    public init(redis: RedisClient, logger: Logger, webhooks: RedisWebhookOutbox? = nil, recovery: RedisChannelRecovery? = nil) {
        self.redis = redis
        self.logger = logger
        self.webhooks = webhooks
        self.recovery = recovery
    }

    /// One publish: a plain `PUBLISH`/`SPUBLISH`, or a recoverable channel's append-and-publish.
    enum Step {
        case command(RedisCommand)
        case script(RedisScriptCall)

        var command: RedisCommand {
            switch self {
            case .command(let command): command
            case .script(let call): call.script.evalsha(keys: call.keys, arguments: call.arguments)
            }
        }
    }

    /// The publish of `events` on `channel` (one message; several events on one channel as ``BroadcastEvent/payload(_:)``).
    func step(channel: String, events: [BroadcastEvent]) -> Step {
        if let recovery, recovery.policy.isRecoverable(channel) {
            return .script(recovery.publishCall(channel: channel, payloads: events.map(\.payload)))
        }
        return .command(redis.publishCommand(BroadcastEvent.payload(events), to: RedisKeys.broadcastChannel(channel)))
    }

    /// The publishes for `events`, to send in a pipeline: one message per event (none for webhook-only ones).
    func steps(for events: [BroadcastEvent]) -> [Step] {
        events.filter { !$0.webhookOnly }.map { step(channel: $0.channel, events: [$0]) }
    }

    /// One publish per channel: several events on one channel go in one message (``BroadcastEvent/payload(_:)``), as a
    /// switch between two public rooms updates both on `chats-public`.
    func batchedSteps(for events: [BroadcastEvent]) -> [Step] {
        BroadcastEvent.byChannel(events.filter { !$0.webhookOnly }).map { step(channel: $0.channel, events: $0.events) }
    }

    /// Sends `steps` and then `extra` in one pipeline. Should Redis have lost its scripts (restarted), the recovery
    /// scripts that answered NOSCRIPT are loaded and run again, in their order.
    func send(_ steps: [Step], then extra: [RedisCommand] = []) async throws -> [RESPValue] {
        var replies = try await redis.pipeline(steps.map(\.command) + extra)
        let missing = steps.indices.filter { index in
            if case .script = steps[index], replies[index].errorMessage?.hasPrefix("NOSCRIPT") == true { return true }
            return false
        }
        guard !missing.isEmpty else { return replies }
        let calls = missing.compactMap { index -> RedisScriptCall? in
            if case .script(let call) = steps[index] { return call }
            return nil
        }
        for (index, reply) in zip(missing, try await redis.run(calls)) { replies[index] = reply }
        return replies
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
        var pipeline: [Step] = []
        for (event, publish) in zip(events.filter { !$0.webhookOnly }, steps(for: events)) {
            if CacheChannels.isCache(event.channel) {
                pipeline.append(.command(RedisCommand(
                    "SET", RedisKeys.channelCache(event.channel), event.clientMessage, "PX", String(CacheChannels.ttl.milliseconds)
                )))
            }
            pipeline.append(publish)
        }
        let replies = try await send(pipeline, then: webhookCommands(for: events))
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
        let steps = batchedSteps(for: events)
        redis.pipelineDetached(steps.map(\.command) + webhookCommands(for: events), orderKey: orderKey) { [logger, redis] result in
            var failed: String? = switch result {
            case .success(let replies): replies.lazy.compactMap(\.errorMessage).first
            case .failure(let error): "\(error)"
            }
            // Redis lost its scripts (restarted): the recovery scripts are loaded and run again.
            if case .success(let replies) = result, failed?.hasPrefix("NOSCRIPT") == true {
                let again = zip(steps, replies).compactMap { step, reply -> RedisScriptCall? in
                    guard case .script(let call) = step, reply.errorMessage?.hasPrefix("NOSCRIPT") == true else { return nil }
                    return call
                }
                failed = nil
                Task { _ = try? await redis.run(again) }
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
        do {
            let replies = try await send(steps(for: events), then: webhookCommands(for: events))
            for reply in replies where reply.errorMessage != nil {
                logger.warning("Publish failed", metadata: ["events": "\(events.map(\.event))", "error": "\(reply)"])
            }
        } catch {
            logger.warning("Publish failed", metadata: ["events": "\(events.count)", "error": "\(error)"])
        }
    }
}
