import AsyncTestSupport
import PresenceCore
import Synchronization

/// ``OccupancyStorage`` in memory, as the Redis one behaves for one worker: a refresh writes only entries still
/// recorded and answers the positions of the others; every write is logged. Its refresh can be held (``gate``).
final class InMemoryOccupancy: OccupancyStorage {
    enum Write: Equatable {
        case touch(channel: String, socket: String)
        case refresh(channel: String, socket: String)
        case remove(channel: String, socket: String)
    }

    private struct State {
        var entries: Set<String> = []
        var writes: [Write] = []
    }

    private let state = Mutex(State())
    /// Holds a refresh before it writes anything.
    let gate = Gate()

    private static func key(_ channel: String, _ socket: String) -> String { channel + "\u{0}" + socket }

    /// The sockets recorded on `channel`.
    func sockets(on channel: String) -> Set<String> {
        state.withLock { state in
            Set(state.entries.compactMap { key in
                let parts = key.split(separator: "\u{0}", omittingEmptySubsequences: false)
                return parts[0] == channel[...] ? String(parts[1]) : nil
            })
        }
    }

    var writes: [Write] { state.withLock { $0.writes } }

    func touch(_ subscriptions: [(channel: String, socket: String)], ttl: Duration) async throws -> [OccupancyChange] {
        state.withLock { state in
            for entry in subscriptions {
                state.entries.insert(Self.key(entry.channel, entry.socket))
                state.writes.append(.touch(channel: entry.channel, socket: entry.socket))
            }
        }
        return []
    }

    func refresh(_ subscriptions: [(channel: String, socket: String)], ttl: Duration) async throws -> [Int] {
        await gate.pass()
        return state.withLock { state in
            var lapsed: [Int] = []
            for (index, entry) in subscriptions.enumerated() {
                if state.entries.contains(Self.key(entry.channel, entry.socket)) {
                    state.writes.append(.refresh(channel: entry.channel, socket: entry.socket))
                } else {
                    lapsed.append(index)
                }
            }
            return lapsed
        }
    }

    func remove(channel: String, socket: String) async throws -> Bool {
        state.withLock { state in
            state.writes.append(.remove(channel: channel, socket: socket))
            return state.entries.remove(Self.key(channel, socket)) != nil
        }
    }

    func liveChannels() async throws -> [String] { [] }

    func counts(_ channels: [String], users: Bool) async throws -> [(subscriptions: Int, users: Int?)] {
        channels.map { (sockets(on: $0).count, nil) }
    }

    func settleLapsed(limit: Int) async throws -> [String] { [] }
}
