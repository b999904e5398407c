import Foundation
import Logging
import PresenceCore
import PresenceIntegrations
import PresenceRedis
import PresenceRealtime
import PresenceHTTP
import Redis

/// The domain services one worker runs, wired from the configuration.
public struct AppServices: Sendable {
    public let configuration: AppConfiguration
    public let redis: RedisClient
    public let users: UserDirectory
    public let tokens: TokenStore
    public let chat: ChatService
    public let support: SupportService
    public let ryo: RyoService
    public let channelPresence: ChannelPresence
    let hub: RealtimeHub
    let signer: PusherSigner
    /// Every open connection, for the connection limits and the stop's deadline.
    public let registry: ConnectionRegistry
    /// Opened when a stop reaches its deadline: long waits give up.
    public let stopDeadline = Latch()
    public let sweeper: PresenceSweeper
    /// Sends each unattended support ticket's notice once per episode (every worker runs one, as the sweeper).
    public let unattendedWatcher: UnattendedWatcher
    /// Sends `message_unseen` notices once their grace ran out (`nil`: no receiver wants them).
    public let unseenWatcher: UnseenWatcher?
    /// Data moved from an earlier version's layout at start-up (each safe to repeat): name, and the work, which
    /// returns how many entries it moved.
    let migrations: [(name: String, run: @Sendable () async throws -> Int)]
    public let searchLimiter: SlidingWindowLimiter
    /// Registrations and login attempts.
    let authLimiters: AuthController.Limiters
    /// Who may hold which channel (signing, subscribing, refreshing, access changes).
    public let channelAccess: ChannelAccess
    /// Who holds admin rights now (``AdminRoster``).
    public let admins: AdminRoster
    /// The single-use tickets ryOS's `/ws` sockets open with, and how many a user may ask for.
    public let realtimeTickets: RealtimeTickets
    public let realtimeTicketLimiter: SlidingWindowLimiter
    /// Where events for clients go, and where channel occupancy is counted.
    public let events: any EventPublisher
    public let occupancy: any OccupancyStorage
    /// Recoverable channels' positions and logs (`nil`: `RECOVERY_ENABLED=false`).
    public let recovery: RedisChannelRecovery?
    /// The webhook outbox, when `WEBHOOK_URLS` names a receiver.
    public let webhooks: RedisWebhookOutbox?
    /// What the operator console reads (and each worker's announcement of itself).
    public let operations: any OperationsStorage
    /// This worker's requests, sampled for its announcement.
    let workerStats = WorkerStats()

    public init(configuration: AppConfiguration, redis: RedisClient, logger: Logger) {
        self.configuration = configuration
        self.redis = redis
        // Every store the domain uses, over the one Redis client, built once here.
        // On recoverable channels every event is published by the recovery script (it gives the event its offset), so
        // the room scripts do not publish their chat events themselves then.
        let attendanceLimit = configuration.support.attendanceLimit
        let presence = RedisPresenceStore(
            redis: redis, logger: logger, announcesInScript: !configuration.recovery.enabled, attendanceLimit: attendanceLimit
        )
        let roomStore = RedisRoomStore(redis: redis)
        let supportStore = RedisSupportStore(redis: redis, attendanceLimit: attendanceLimit)
        self.migrations = [
            ("sweeper work list", { try await RedisExpiryStore(redis: redis).migrateLegacyIndex() }),
            ("public room list", { try await roomStore.migrateLegacyPublicRooms() }),
            ("support agent flags", { try await supportStore.repairAgentFlags() }),
        ]
        let webhooks = configuration.webhooks.enabled ? RedisWebhookOutbox(redis: redis, settings: configuration.webhooks) : nil
        self.webhooks = webhooks
        let recovery = configuration.recovery.enabled ? RedisChannelRecovery(redis: redis, policy: configuration.recovery) : nil
        self.recovery = recovery
        let events = RedisEventPublisher(redis: redis, logger: logger, webhooks: webhooks, recovery: recovery)
        self.events = events
        let occupancy = RedisOccupancyStore(redis: redis, webhooks: configuration.webhooks)
        self.operations = RedisOperationsStore(redis: redis)
        self.occupancy = occupancy
        let limits = RedisRateLimitStorage(redis: redis)
        let users = UserDirectory(storage: RedisUserStore(redis: redis), hasher: BcryptPasswordHasher(cost: configuration.bcryptCost))
        self.users = users
        let tokens = TokenStore(storage: RedisTokenStore(redis: redis), ttl: configuration.tokenTTL)
        self.tokens = tokens
        // Admin rights only for bootstrap accounts: confirmed by start-up (``StartupTasks``) or the first admin login.
        let roster = AdminRoster(configured: configuration.chat.admins)
        self.admins = roster
        var chatSettings = configuration.chat
        chatSettings.roster = roster
        // Pending `message_unseen` notices, kept only when some receiver wants them.
        let unseen = configuration.webhooks.wantsUnseen ? UnseenMessages(
            storage: RedisUnseenStore(redis: redis, webhooks: configuration.webhooks), grace: configuration.webhooks.unseenGrace,
            logger: logger
        ) : nil
        self.unseenWatcher = unseen.map { UnseenWatcher(unseen: $0, logger: logger) }
        var chatService = ChatService(
            rooms: roomStore, presence: presence,
            history: RedisMessageHistory(redis: redis, limit: configuration.chat.historyLimit), users: users,
            events: events, limits: limits, settings: chatSettings, logger: logger
        )
        chatService.unseen = unseen
        let chat = chatService
        self.chat = chat
        var supportSettings = configuration.support
        let waitingStore = RedisSupportWaitingStore(redis: redis)
        supportSettings.admins = configuration.chat.admins
        supportSettings.roster = roster
        var supportService = SupportService(
            tickets: supportStore, presence: presence,
            history: RedisMessageHistory(redis: redis, limit: supportSettings.transcriptLimit, overflow: .refuseNew),
            users: users, events: events, limits: limits, settings: supportSettings, logger: logger,
            presenceLimiter: chat.presenceLimiter, waiting: waitingStore
        )
        supportService.unseen = unseen
        let support = supportService
        self.support = support
        let provider: any AIProvider = configuration.ai.baseURL.map {
            OpenAICompatibleProvider(
                baseURL: $0, apiKey: configuration.ai.apiKey, model: configuration.ai.model, timeout: configuration.ai.timeout
            )
        } ?? OfflineRyoResponder()
        self.ryo = RyoService(
            provider: provider,
            limiter: SlidingWindowLimiter(name: "ai", limit: configuration.ai.rateLimit, window: configuration.ai.rateWindow, storage: limits),
            chat: chat, logger: logger
        )
        let channelPresence = ChannelPresence(sockets: presence, presence: presence, chat: chat, ttl: configuration.chat.presenceTTL)
        self.channelPresence = channelPresence
        let channelAccess = ChannelAccess(chat: chat, support: support, grants: RedisGrantStore(redis: redis))
        self.channelAccess = channelAccess
        self.realtimeTickets = RealtimeTickets(storage: RedisRealtimeTicketStore(redis: redis))
        self.realtimeTicketLimiter = SlidingWindowLimiter(name: "realtime-ticket", limit: 30, window: .seconds(60), storage: limits)
        self.hub = RealtimeHub(
            subscriber: RedisRealtimeFeed(pubsub: redis.makeSubscriber()), occupancy: occupancy, presence: channelPresence, access: channelAccess, settings: configuration.pusher,
            tokenCache: tokens.cache, webhooks: webhooks, recovery: recovery, unseen: unseen, logger: logger
        )
        self.signer = PusherSigner(key: configuration.pusher.key, secret: configuration.pusher.secret)
        self.registry = ConnectionRegistry(
            settings: configuration.connections, trustedProxies: configuration.trustedProxies.compactMap(ClientAddress.Block.init)
        )
        self.searchLimiter = SlidingWindowLimiter(name: "search", limit: configuration.searchRateLimit, window: .seconds(60), storage: limits)
        self.authLimiters = AuthController.Limiters(
            register: SlidingWindowLimiter(name: "register", limit: configuration.registerRateLimit, window: .seconds(3600), storage: limits),
            loginPair: SlidingWindowLimiter(name: "login", limit: configuration.loginRateLimit, window: .seconds(60), storage: limits),
            loginUser: SlidingWindowLimiter(name: "login-user", limit: configuration.loginUserRateLimit, window: .seconds(60), storage: limits),
            loginAddress: SlidingWindowLimiter(name: "login-address", limit: configuration.loginAddressRateLimit, window: .seconds(60), storage: limits)
        )
        self.unattendedWatcher = UnattendedWatcher(
            support: support, storage: waitingStore, webhooks: webhooks,
            interval: min(configuration.sweepInterval, .seconds(1)), logger: logger
        )
        let expiry = RedisExpiryStore(redis: redis, attendanceLimit: attendanceLimit)
        self.sweeper = PresenceSweeper(storage: expiry, interval: configuration.sweepInterval, logger: logger) { expired in
            if expired.meta["type"] == "support" {
                await support.announceExpired(room: expired.room, users: expired.users, meta: expired.meta)
            } else if expired.meta["type"] == "channel", let channel = expired.meta["channel"] {
                await chat.broadcaster.publish(expired.users.map { ChatService.memberEvent(channel: channel, user: $0, action: .left) })
            } else {
                await chat.announceExpired(room: expired.room, users: expired.users, userCount: expired.userCount, meta: expired.meta)
            }
        }
    }
}
