import Synchronization
@testable import PresenceCore

/// ``UserStorage`` in memory.
struct InMemoryUserStore: UserStorage {
    let world: World

    func create(username: String, passwordHash: String) async throws -> Bool {
        world.withState { state in
            guard state.users[username] == nil else { return false }
            state.users[username] = (passwordHash, state.now)
            return true
        }
    }
    func passwordHash(of username: String) async throws -> String? { world.withState { $0.users[username]?.hash } }
    func isKnownAddress(_ address: String, of user: String) async throws -> Bool { world.withState { $0.addresses[user]?.contains(address) == true } }
    func rememberAddress(_ address: String, of user: String) async throws { world.withState { _ = $0.addresses[user, default: []].insert(address) } }
    func existing(_ usernames: [String]) async throws -> [Bool] { world.withState { state in usernames.map { state.users[$0] != nil } } }
    func touch(_ username: String) async throws { world.withState { state in state.users[username]?.lastActive = state.now } }
    func createBootstrapAdmin(username: String, passwordHash: String) async throws -> Bool {
        guard try await create(username: username, passwordHash: passwordHash) else { return false }
        world.withState { _ = $0.bootstrapAdmins.insert(username) }
        return true
    }
    func isBootstrapAdmin(_ user: String) async throws -> Bool { world.withState { $0.bootstrapAdmins.contains(user) } }
    func setCurrentRoom(_ room: String?, of user: String, ttl: Duration) async throws { world.withState { $0.currentRooms[user] = room } }
    func currentRoom(of user: String) async throws -> String? { world.withState { $0.currentRooms[user] } }
    func search(prefix: String, limit: Int) async throws -> [UserSummary] {
        world.withState { state in
            state.users.keys.filter { $0.hasPrefix(prefix) }.sorted().prefix(limit)
                .map { UserSummary(username: $0, lastActive: state.users[$0]!.lastActive) }
        }
    }
}

/// ``RateLimitStorage`` in memory: the sliding-window log on the world's clock.
struct InMemoryRateLimitStorage: RateLimitStorage {
    let world: World

    func evaluate(limit name: String, subject: String, limit: Int, window: Duration, cost: Int, peek: Bool) async throws
        -> (allowed: Bool, remaining: Int, resetMilliseconds: Int) {
        world.withState { state in
            let key = "\(name):\(subject)"
            let now = state.now
            var log = (state.limits[key] ?? []).filter { $0 > now - window.milliseconds }
            var allowed: Bool
            if peek {
                allowed = log.count < limit
            } else {
                allowed = log.count + cost <= limit
                if allowed { log += Array(repeating: now, count: cost) }
            }
            state.limits[key] = log
            let reset = log.first.map { Int($0 + window.milliseconds - now) } ?? 0
            return (allowed, limit - log.count, reset)
        }
    }
}

/// ``EventPublisher`` that records what it is given.
final class RecordingEvents: EventPublisher {
    let published = Mutex<[BroadcastEvent]>([])
    let changes = Mutex<[AccessChange]>([])

    func publish(_ events: [BroadcastEvent]) async { published.withLock { $0 += events } }
    func publish(_ change: AccessChange) async { changes.withLock { $0.append(change) } }
    func publishDetached(_ events: [BroadcastEvent], orderKey: String) { published.withLock { $0 += events.filter { !$0.webhookOnly } } }
    func terminate(user: String) async throws {}
    func signOut(user: String) async throws {}
    func deliver(_ events: [BroadcastEvent]) async throws { published.withLock { $0 += events } }

    var events: [BroadcastEvent] { published.withLock { $0 } }
    var accessChanges: [AccessChange] { changes.withLock { $0 } }
    func clear() {
        published.withLock { $0 = [] }
        changes.withLock { $0 = [] }
    }
}
