/// Single-use tickets for ryOS's `/ws` socket, by digest (the ticket itself is never stored), each for a short while.
public protocol RealtimeTicketStorage: Sendable {
    /// Stores `digest` → `user` for `ttl`.
    func save(digest: String, user: String, ttl: Duration) async throws
    /// Takes `digest` in one step (it is gone afterwards): its user, or `nil` when unknown, expired or already taken.
    func take(digest: String) async throws -> String?
}
