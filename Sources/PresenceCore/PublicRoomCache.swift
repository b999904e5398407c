import Synchronization

/// Remembers, for a few seconds, which room ids this worker has seen to be public chat rooms.
///
/// A presence switch into a room known to be public skips its separate access check: a public room's type never
/// changes and every id of a public room is its name's, so the only fact that can go stale is the room's existence,
/// and `presence_join.lua` checks that atomically anyway (a room deleted meanwhile still answers 404). Not shared
/// state: a worker without the entry does the check, and gets the same answer.
public final class PublicRoomCache: Sendable {
    private struct State {
        var expiries: [String: ContinuousClock.Instant] = [:]
    }

    private let state = Mutex(State())
    private let lifetime: Duration
    private let capacity: Int

    /// - Parameters: lifetime: how long an entry is trusted; capacity: entries kept before the cache starts over.
    public init(lifetime: Duration = .seconds(5), capacity: Int = 10_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// Whether `id` was seen to be public less than `lifetime` ago.
    public func isPublic(_ id: String) -> Bool {
        let now = ContinuousClock.now
        return state.withLock { state in
            guard let expiry = state.expiries[id] else { return false }
            if expiry > now { return true }
            state.expiries[id] = nil
            return false
        }
    }

    /// Records what a read of the room said about it.
    public func observe(_ room: Room) {
        let expiry = ContinuousClock.now + lifetime
        state.withLock { state in
            guard room.type == .public else {
                state.expiries[room.id] = nil
                return
            }
            if state.expiries.count >= capacity { state.expiries.removeAll(keepingCapacity: true) }
            state.expiries[room.id] = expiry
        }
    }

    /// Forgets `id` (the room was deleted here).
    public func forget(_ id: String) {
        state.withLock { $0.expiries[id] = nil }
    }
}
