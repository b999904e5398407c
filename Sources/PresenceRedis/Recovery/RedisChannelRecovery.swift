import PresenceCore
import Redis

/// Recoverable channels in Redis: a channel's position in the hash `rec:{<channel>}` (epoch, latest offset), its
/// retained events in the stream `rec:{<channel>}:log` (entry `<offset>-0`). Appending and publishing are one script
/// on the channel's slot (`recovery_publish.lua`, the call ``publishCall(channel:payloads:)`` builds for
/// ``RedisEventPublisher``); its pub/sub channel `ch:{<channel>}` is in that slot too, so the script's `SPUBLISH` is
/// allowed on a cluster. Reads are `recovery_read.lua`.
public struct RedisChannelRecovery: ChannelRecoveryStorage {
    let redis: RedisClient
    /// Which channels are recoverable, and their window and size.
    public let policy: RecoveryPolicy

    public init(redis: RedisClient, policy: RecoveryPolicy) {
        self.redis = redis
        self.policy = policy
    }

    /// A new epoch: 16 hex digits.
    static func freshEpoch() -> String {
        let value = UInt64.random(in: 1...UInt64.max)
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// The append-and-publish of `payloads` (pub/sub texts of events on `channel`, each a JSON object), in order.
    public func publishCall(channel: String, payloads: [String]) -> RedisScriptCall {
        RedisScriptCall(
            Scripts.recoveryPublish.script,
            keys: [RedisKeys.recoveryPosition(channel), RedisKeys.recoveryLog(channel)],
            arguments: [
                redis.isCluster ? "SPUBLISH" : "PUBLISH", RedisKeys.broadcastChannel(channel), Self.freshEpoch(),
                String(RecoveryPolicy.positionTTL.components.seconds), String(policy.window.milliseconds),
                String(policy.maxEvents),
            ] + payloads.map { String($0.utf8.dropLast()) ?? $0 }  // the closing brace: the script appends offset and epoch
        )
    }

    public func recover(channel: String, from position: ChannelPosition?) async throws -> ChannelRecovery {
        let reply = try await redis.run(
            Scripts.recoveryRead,
            keys: [RedisKeys.recoveryPosition(channel), RedisKeys.recoveryLog(channel)],
            arguments: [
                String(policy.window.milliseconds), position == nil ? "0" : "1", position?.epoch ?? "", String(position?.offset ?? 0),
            ]
        )
        guard case .array(let items) = reply, items.count >= 3, let epoch = items[0].string,
              let latest = items[1].int, let recovered = items[2].int else {
            throw RedisError.protocolError("recovery_read.lua: unexpected reply \(reply)")
        }
        return ChannelRecovery(
            position: ChannelPosition(epoch: epoch, offset: latest), recovered: recovered == 1,
            events: items.dropFirst(3).compactMap(\.string)
        )
    }
}
