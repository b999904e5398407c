/// Who is present where: the store behind chat rooms, support rooms and presence channels, shared by every worker.
/// Presence lasts `ttl` unless refreshed; every change is atomic per room, on the store's clock.
public protocol PresenceStorage: Sendable {
    /// Enters `room` (or refreshes presence there). `state` replaces the member's state; `nil` keeps it.
    /// Throws ``DomainError/roomNotFound`` (no such room) or ``DomainError/roomClosed``.
    func join(room: String, user: String, ttl: Duration, state: JSONValue?) async throws -> PresenceJoin
    /// Leaves `room` at once; not being there is not an error.
    func leave(room: String, user: String) async throws -> PresenceLeave
    /// Refreshes a present member, optionally replacing its state; `nil` when the user is not present.
    func refresh(room: String, user: String, ttl: Duration, state: JSONValue?) async throws -> PresenceRefresh?
    /// Present members in join order, one page at a time (an opaque cursor); ``DomainError/invalid(_:)`` for a bad one.
    func members(room: String, ttl: Duration, limit: Int, cursor: String?) async throws -> (members: [PresenceMember], nextCursor: String?)
    /// Everyone present in `room` now (any order), with their last refresh for presence `ttl`: one range query, not a
    /// lookup per member.
    func presentUsers(room: String, ttl: Duration) async throws -> [PresentUser]
    /// How many are present in `room` now.
    func presentCount(room: String) async throws -> Int
    /// Which of `users` are present in `room` now, in the order given (one step, whatever the room's size).
    func present(room: String, among users: [String]) async throws -> [String]
    /// The states of `users` in `room`, `{}` for those not present.
    func states(room: String, users: [String]) async throws -> [JSONValue]

    /// A chat switch in one step: leave `previous`, enter `next`, and record which rooms the user is in. With
    /// `nextIsPublic` the caller skipped the access check because it saw `next` was public: a storage that can check
    /// it in the same step refuses the join (forbidden) when it is not. ``PresenceSwitch/announced`` says whether the
    /// storage published the rooms' own events itself. With `limit`, the switch is first checked against it for `user`
    /// (in the same step as the user's bookkeeping where the storage can): refused, it throws
    /// ``DomainError/rateLimited(_:)`` and changes nothing.
    func switchRooms(
        user: String, previous: String?, next: String?, ttl: Duration, nextIsPublic: Bool, limit: SlidingWindowLimiter?
    ) async throws -> PresenceSwitch
    /// The chat rooms `user` entered and has not left (may lag behind expiry).
    func presentRooms(of user: String) async throws -> [String]
    /// Forgets rooms from `user`'s present rooms.
    func forgetPresentRooms(_ rooms: [String], of user: String) async throws
    /// Forgets `room` from the present rooms of each of `users` (after their presence expired).
    func forgetPresentRoom(_ room: String, of users: [String]) async throws
}

extension PresenceStorage {
    public func join(room: String, user: String, ttl: Duration) async throws -> PresenceJoin {
        try await join(room: room, user: user, ttl: ttl, state: nil)
    }

    public func refresh(room: String, user: String, ttl: Duration) async throws -> PresenceRefresh? {
        try await refresh(room: room, user: user, ttl: ttl, state: nil)
    }
}
