/// The knobs of the support face.
public struct SupportSettings: Sendable {
    /// How long presence lasts without a heartbeat (`SUPPORT_PRESENCE_TTL`, the seed's `presenceTtlSeconds`).
    public var presenceTTL: Duration = .seconds(45)
    /// Messages a ticket's transcript holds (`SUPPORT_TRANSCRIPT_LIMIT`); past it new messages are refused, never
    /// trimmed.
    public var transcriptLimit: Int = 10_000
    /// Intervals a ticket's attendance keeps, the newest (`SUPPORT_ATTENDANCE_LIMIT`); older ones are trimmed.
    public var attendanceLimit: Int = 10_000
    /// How long a ticket's customer waits with no agent present before the ticket is reported unattended
    /// (`SUPPORT_UNATTENDED_AFTER`): `ticket-unattended` and the `ticket_unattended` webhook, once per episode.
    public var unattendedAfter: Duration = .seconds(60)
    /// Support messages per user per 60 s (`SUPPORT_MESSAGE_RATE_LIMIT`).
    public var messageLimit: Int = 30
    /// Usernames with admin rights (`ADMIN_USERS`); admins count as agents.
    public var admins: Set<String> = []
    /// Which of `admins` hold their rights now (see ``ChatSettings/roster``).
    public var roster: AdminRoster?

    public init() {}
}
