/// Which user each channel signature was given to, per socket, for a short while: a subscription made with it
/// rides on that user's access.
public protocol GrantStorage: Sendable {
    /// Records that `user` was given a signature for `channel` on `socket`, for `ttl`.
    func record(socket: String, channel: String, user: String, ttl: Duration) async throws
    /// The user a signature for `channel` on `socket` was given to, if one was recorded and has not lapsed.
    func holder(socket: String, channel: String) async throws -> String?
    /// Forgets every grant recorded for `user` (their sessions ended): a signature given before no longer subscribes.
    func revokeAll(user: String) async throws
}
