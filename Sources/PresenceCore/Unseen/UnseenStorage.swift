/// Pending `message_unseen` notices, who is subscribed to which private room, and the index of rooms to look at (#32).
/// In Redis: `room:{<id>}:unseen`, `:unseen:sending` and `:watchers` in the room's slot, the index `unseen:due:{…}`
/// (16 buckets) and the sent markers `unseen:sent:{…}` beside the webhook outbox.
public protocol UnseenStorage: Sendable {
    /// A message was posted in `room`: each of `members` (not its author) who is neither present nor subscribed gets
    /// a pending notice due `grace` later, or has theirs counted up. The room is registered in the index first.
    /// Returns how many members have one pending.
    func posted(room: String, message: ChatMessage, members: [String], grace: Duration) async throws -> Int

    /// Records subscriptions to rooms' channels and drops their users' pending notices. Returns how many were dropped.
    func watch(_ watches: [RoomWatch], ttl: Duration) async throws -> Int
    /// Records them again with a new expiry (a worker's periodic refresh).
    func refresh(_ watches: [RoomWatch], ttl: Duration) async throws
    /// Forgets subscriptions that ended.
    func unwatch(_ watches: [RoomWatch]) async throws

    /// Leases up to `limit` rooms whose look is due.
    func due(limit: Int, lease: Duration) async throws -> [LeasedRoom]
    /// Decides the room's due notices (`unseen_claim.lua`): suppressed, or claimed for the caller for `lease`.
    func claim(_ room: LeasedRoom, lease: Duration) async throws -> UnseenClaim
    /// Writes a claimed notice's webhook event to the outbox of every receiver that wants it, unless it was written
    /// already (a dead worker's claim taken over). Returns whether it was written by this call.
    func send(_ notice: UnseenNotice) async throws -> Bool
    /// The claimed notice went out: forget it.
    func done(_ notice: UnseenNotice) async throws
    /// Sets the room's next look (`nil`: none), unless a post registered it anew meanwhile.
    func settle(_ room: LeasedRoom, next: Int64?) async throws
}
