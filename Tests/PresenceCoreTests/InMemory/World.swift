import Synchronization
@testable import PresenceCore

/// The shared state behind the in-memory stores: a manual clock and everything the Redis keys hold, so that stores
/// which share keys in Redis (room metadata is read by presence, history and support alike) share them here.
/// Test doubles of our own storage protocols, never of Redis.
final class World: Sendable {
    struct Presence {
        var joinedAt: Int64
        var expiresAt: Int64
        var state: JSONValue
    }

    struct State {
        var now: Int64 = 1_700_000_000_000
        var meta: [String: [String: String]] = [:]
        var access: [String: Set<String>] = [:]
        var publicRooms: Set<String> = []
        var userRooms: [String: Set<String>] = [:]
        var presence: [String: [String: Presence]] = [:]
        var presentRooms: [String: Set<String>] = [:]
        /// The sweeper's work list: room → (next check, last registration).
        var sweepRooms: [String: (due: Int64, touched: Int64)] = [:]
        var history: [String: [ChatMessage]] = [:]
        var lastMessageID: Int64 = 0
        var snapshots: [String: String] = [:]
        /// Support rooms' ended presences, in the order they ended (`room:{id}:attendance`).
        var attendance: [String: [AttendanceInterval]] = [:]
        var agents: Set<String> = []
        /// Support tickets' waiting episodes (`room:{id}:waiting`) and the watcher's index (room → next look; `.max`
        /// once notified).
        var waiting: [String: (since: Int64, notified: Bool)] = [:]
        var waitingIndex: [String: Int64] = [:]
        var users: [String: (hash: String, lastActive: Int64)] = [:]
        var addresses: [String: Set<String>] = [:]
        var currentRooms: [String: String] = [:]
        var bootstrapAdmins: Set<String> = []
        var limits: [String: [Int64]] = [:]
        /// Sockets behind presence: "room user" → socket → expiry.
        var sockets: [String: [String: Int64]] = [:]
    }

    let state = Mutex(State())

    var now: Int64 { state.withLock { $0.now } }

    /// Moves the clock on.
    func advance(_ duration: Duration) {
        state.withLock { $0.now += duration.milliseconds }
    }

    func withState<T>(_ body: (inout State) throws -> T) rethrows -> T {
        try state.withLock { try body(&$0) }
    }

    /// Members whose presence has not expired.
    static func present(_ state: State, room: String) -> [String: Presence] {
        (state.presence[room] ?? [:]).filter { $0.value.expiresAt > state.now }
    }

    /// Records the end of `user`'s presence in a support room, as `lib/attendance.lua` does: `left` and `closed` end
    /// now, and a presence that had run out ends `expired` at its deadline whatever the caller says.
    static func endPresence(_ state: inout State, room: String, user: String, _ presence: Presence, reason: LeaveReason) {
        guard state.meta[room]?["type"] == "support" else { return }
        let expired = presence.expiresAt <= state.now
        state.attendance[room, default: []].append(AttendanceInterval(
            user: user, role: presence.state["role"]?.string ?? "customer", from: presence.joinedAt,
            to: expired ? presence.expiresAt : state.now, reason: expired ? .expired : reason
        ))
    }
}
