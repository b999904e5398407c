/// The knobs of the chat face (from configuration).
public struct ChatSettings: Sendable {
    /// How long presence lasts without a heartbeat (`CHAT_PRESENCE_TTL`).
    public var presenceTTL: Duration = .seconds(90)
    /// Messages kept per room (`HISTORY_LIMIT`).
    public var historyLimit: Int = 1000
    /// Usernames with admin rights (`ADMIN_USERS`); none on a fresh install.
    public var admins: Set<String> = []
    /// Which of `admins` hold their rights now (bootstrap accounts only); `nil`: all of them (in-memory rules tests).
    public var roster: AdminRoster?
    /// Rooms a user may create per hour (`ROOM_RATE_LIMIT`).
    public var roomLimit: Int = 20
    /// Other users a user may name as members of new private rooms per hour (`INVITE_RATE_LIMIT`).
    public var inviteLimit: Int = 100
    /// Presence changes per user per 60 s: switches, presence-channel subscribes, support joins and leaves
    /// (`PRESENCE_RATE_LIMIT`).
    public var presenceLimit: Int = 60
    /// Messages per user per window (`MESSAGE_RATE_LIMIT` per 60 s).
    public var messageLimit: Int = 20
    public var messageWindow: Duration = .seconds(60)
    /// Rooms created at start-up when missing (`DEFAULT_ROOMS`).
    public var defaultRooms: [String] = ["general", "random"]

    public init() {}
}
