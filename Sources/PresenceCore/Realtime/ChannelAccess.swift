/// Who may hold which private and presence channel, decided from rooms and tickets as they are now: used to sign
/// subscriptions (`/pusher/auth`), when a socket subscribes, when presence is refreshed and when access changes.
public struct ChannelAccess: Sendable {
    let chat: ChatService
    let support: SupportService
    let grants: any GrantStorage

    public init(chat: ChatService, support: SupportService, grants: any GrantStorage) {
        self.chat = chat
        self.support = support
        self.grants = grants
    }

    /// How long a signature's record waits for the subscription that uses it.
    public static let grantTTL = Duration.seconds(600)

    /// Records that `user` was given a signature for `channel` on `socket`.
    public func recordGrant(socket: String, channel: String, user: String) async throws {
        try await grants.record(socket: socket, channel: channel, user: user, ttl: Self.grantTTL)
    }

    /// The user a signature for `channel` on `socket` was given to, if this service signed one lately.
    public func grantHolder(socket: String, channel: String) async throws -> String? {
        try await grants.holder(socket: socket, channel: channel)
    }

    /// Forgets every signature recorded for `user` (their session ended): those signatures no longer subscribe.
    public func endGrants(of user: String) async throws {
        try await grants.revokeAll(user: user)
    }

    /// Whether a signed subscription to governed `channel` on `socket` may be made now. The subscription rides on
    /// whom `/pusher/auth` signed it for on this socket (the grant record; `user`, a presence channel's `user_id`,
    /// must be that user), and that user must have access now, whatever the signature says: a signature whose grant
    /// lapsed or was forgotten (a logout) gives nothing, and the client asks `/pusher/auth` again.
    public func admit(channel: String, socket: String, user: String?) async throws -> Admission {
        guard let holder = try await grants.holder(socket: socket, channel: channel), user == nil || user == holder else {
            return .unsigned
        }
        return try await allows(channel, user: holder) ? .allowed(holder: holder) : .forbidden
    }

    /// The answer of ``admit(channel:socket:user:)``.
    public enum Admission: Sendable, Equatable {
        /// Allowed, riding on `holder`'s access.
        case allowed(holder: String)
        /// No grant names whom the signature is for (lapsed, forgotten, or never made by `/pusher/auth`).
        case unsigned
        /// The holder has no access now.
        case forbidden
    }

    /// Whether `channel` is one whose access this service decides (rooms, tickets, a user's own channel). Other
    /// private and presence channels are the business of whoever holds the app secret and signs them.
    public static func isGoverned(_ channel: String) -> Bool {
        channel.hasPrefix("private-chats-") || channel.hasPrefix("private-room-") || channel.hasPrefix("presence-room-")
            || channel == SupportService.queueChannel
    }

    /// Whether `user` may hold `channel` now. Channels this service does not govern are refused (it signs none).
    public func allows(_ channel: String, user: String) async throws -> Bool {
        // ryOS's global presence: every signed-in user.
        if channel == ChannelPresence.globalChannel { return true }
        if channel.hasPrefix("private-chats-") {
            return channel == "private-chats-\(user)"
        }
        // Unattended tickets' notices: agents and admins.
        if channel == SupportService.queueChannel { return try await support.isAgent(user) }
        if channel.hasPrefix("private-room-ticket_") {
            return try await support.canAccess(ticket: String(channel.dropFirst("private-room-ticket_".count)), user: user)
        }
        for prefix in ["private-room-", "presence-room-"] where channel.hasPrefix(prefix) {
            let id = String(channel.dropFirst(prefix.count))
            guard Validation.isNewChatRoomID(id) else { return false }
            do {
                _ = try await chat.room(id, viewer: user)
                return true
            } catch is DomainError {
                return false
            }
        }
        return false
    }
}
