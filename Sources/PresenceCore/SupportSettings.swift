/// The knobs of the support face.
public struct SupportSettings: Sendable {
    /// How long presence lasts without a heartbeat (`SUPPORT_PRESENCE_TTL`, the seed's `presenceTtlSeconds`).
    public var presenceTTL: Duration = .seconds(45)
    /// Messages kept per ticket (`HISTORY_LIMIT`).
    public var historyLimit: Int = 1000
    /// Usernames with admin rights (`ADMIN_USERS`); admins count as agents.
    public var admins: Set<String> = ["ryo"]

    public init() {}
}
