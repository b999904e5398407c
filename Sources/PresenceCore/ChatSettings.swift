/// The knobs of the chat face (from configuration).
public struct ChatSettings: Sendable {
    /// How long presence lasts without a heartbeat (`CHAT_PRESENCE_TTL`).
    public var presenceTTL: Duration = .seconds(90)
    /// Messages kept per room (`HISTORY_LIMIT`).
    public var historyLimit: Int = 1000
    /// Usernames with admin rights (`ADMIN_USERS`).
    public var admins: Set<String> = ["ryo"]
    /// Messages per user per window (`MESSAGE_RATE_LIMIT` per 60 s).
    public var messageLimit: Int = 20
    public var messageWindow: Duration = .seconds(60)
    /// Rooms created at start-up when missing (`DEFAULT_ROOMS`).
    public var defaultRooms: [String] = ["general", "random"]

    public init() {}
}
