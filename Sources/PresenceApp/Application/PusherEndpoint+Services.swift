import Logging
import PresenceCore
import PresenceHTTP
import PresenceRealtime
import PresenceRedis

extension PusherEndpoint {
    /// The connection's parts from the worker's services.
    convenience init(services: AppServices) {
        self.init(
            hub: services.hub, events: services.events, presence: services.channelPresence, access: services.channelAccess,
            presenceLimiter: services.chat.presenceLimiter, settings: services.configuration.pusher,
            signer: services.signer, cache: RedisChannelCache(redis: services.redis), tickets: services.realtimeTickets,
            recovery: services.recovery, recoveryPolicy: services.configuration.recovery, echoPath: services.configuration.websocketEchoPath, logger: Logger(label: "pusher")
        )
    }
}
