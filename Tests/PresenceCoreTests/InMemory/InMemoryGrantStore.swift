import Synchronization
@testable import PresenceCore

/// ``GrantStorage`` in memory: socket → channel → user (no TTL: the tests forget grants themselves).
final class InMemoryGrantStore: GrantStorage {
    let grants = Mutex<[String: [String: String]]>([:])

    func record(socket: String, channel: String, user: String, ttl: Duration) async throws {
        grants.withLock { $0[socket, default: [:]][channel] = user }
    }

    func holder(socket: String, channel: String) async throws -> String? {
        grants.withLock { $0[socket]?[channel] }
    }

    func revokeAll(user: String) async throws {
        grants.withLock { grants in
            for socket in grants.keys { grants[socket] = grants[socket]?.filter { $0.value != user } }
        }
    }
}
