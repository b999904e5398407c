import NIOCore
import PresenceCore
import PresenceRedis
import PresenceRealtime
import Redis

/// The composition root's adapter: ``RealtimeFeed`` on Redis pub/sub: a client channel `c` is the Redis channel `ch:{c}` (``RedisKeys/broadcastChannel(_:)``),
/// the control topic ``RedisKeys/pusherControl``, revocations ``RedisKeys/tokensRevoked``. Works over a
/// ``RedisSubscriber`` or, on a cluster, a ``RedisShardedSubscriber``.
public final class RedisRealtimeFeed: RealtimeFeed {
    let pubsub: any RedisPubSub

    public init(pubsub: any RedisPubSub) {
        self.pubsub = pubsub
    }

    public var events: any AsyncSequence<RealtimeFeedEvent, Never> {
        pubsub.events.compactMap { event -> RealtimeFeedEvent? in
            switch event {
            case .reconnected: return .reconnected
            case .message(let channel, let payload):
                guard let topic = Self.topic(ofRedisChannel: channel) else { return nil }
                return .message(topic, payload)
            }
        }
    }

    public func requestSubscribe(_ topics: [RealtimeTopic]) -> EventLoopFuture<Void> {
        pubsub.requestSubscribe(topics.map(Self.redisChannel(of:)))
    }

    public func requestUnsubscribe(_ topics: [RealtimeTopic]) -> EventLoopFuture<Void> {
        pubsub.requestUnsubscribe(topics.map(Self.redisChannel(of:)))
    }

    public func compact() { pubsub.compact() }
    public func close() async { await pubsub.close() }
    public func run() async { await pubsub.run() }

    /// The Redis channel a topic is published on.
    public static func redisChannel(of topic: RealtimeTopic) -> String {
        switch topic {
        case .channel(let name): RedisKeys.broadcastChannel(name)
        case .control: RedisKeys.pusherControl
        case .tokensRevoked: RedisKeys.tokensRevoked
        }
    }

    static func topic(ofRedisChannel channel: String) -> RealtimeTopic? {
        if let client = RedisKeys.clientChannel(ofBroadcast: channel) { return .channel(client) }
        if channel == RedisKeys.pusherControl { return .control }
        if channel == RedisKeys.tokensRevoked { return .tokensRevoked }
        return nil
    }
}
