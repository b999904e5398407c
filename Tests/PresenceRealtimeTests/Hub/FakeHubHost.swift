import AsyncTestSupport
import Logging
import PresenceCore
@testable import PresenceRealtime
import Synchronization

/// A hub without sockets or Redis for ``HubMaintenance``: a ``HubRegistry`` of plain socket ids, the presence users
/// per socket, an in-memory occupancy and presence, and a log of what it was asked to do.
actor FakeHubHost: HubMaintenanceHost {
    var registry = HubRegistry<String>()
    /// socket → channel → presence user.
    private var users: [String: [String: String]] = [:]
    /// Presence entries in "Redis": a refresh answers the others as lapsed.
    private(set) var presence: Set<String> = []
    private(set) var presenceRefreshed: [String] = []
    private(set) var restored: [String] = []
    private(set) var compactions = 0
    let occupancy = InMemoryOccupancy()
    /// Holds a presence refresh before it writes anything.
    let presenceGate = Gate()

    static func key(_ entry: HubPresenceEntry) -> String { "\(entry.channel)/\(entry.user)/\(entry.socket)" }

    /// Maintenance over this host, in batches of `batchSize` calls.
    nonisolated func maintenance(batchSize: Int) -> HubMaintenance {
        HubMaintenance(
            host: self, occupancy: occupancy, occupancyTTL: .seconds(60), presenceTTL: .seconds(60), pongTimeout: 30,
            batchSize: batchSize, settlesLapsed: false, logger: Logger(label: "test"),
            refreshPresence: { batch in try await self.refreshPresence(batch) }
        )
    }

    /// Opens a socket and joins it to `channels` (channel → presence user), performing the occupancy writes.
    func open(_ id: String, _ channels: [String: String?]) async {
        _ = registry.add(id, id: id)
        for (channel, user) in channels.sorted(by: { $0.key < $1.key }) {
            if let user {
                users[id, default: [:]][channel] = user
                presence.insert(Self.key((channel, user, id)))
            }
            guard case .joined(let actions) = registry.join(socket: id, channel: channel, held: true) else { continue }
            await perform(actions)
        }
    }

    /// The socket leaves `channel`, as an unsubscribe does.
    func leave(_ id: String, channel: String) async {
        let user = users[id]?.removeValue(forKey: channel)
        await perform(registry.leave(socket: id, channel: channel, user: user))
    }

    private func perform(_ actions: [HubAction<String>]) async {
        for action in actions {
            switch action {
            case .touchOccupancy(let channel, let socket): _ = try? await occupancy.touch([(channel, socket)], ttl: .seconds(60))
            case .removeOccupancy(let channel, let socket): _ = try? await occupancy.remove(channel: channel, socket: socket)
            case .removePresence(let channel, let user, let socket): presence.remove(Self.key((channel, user, socket)))
            case .subscribeFeed(let topic, let ticket): registry.feedSubscribed(topic, ticket: ticket)
            case .unsubscribeFeed(let topic, let ticket): registry.feedUnsubscribed(topic, ticket: ticket)
            case .deliver, .close, .drainCompleted: break
            }
        }
    }

    /// As ``ChannelPresence/refresh(_:)`` in Redis: only entries still recorded are refreshed; the others are lapsed.
    private func refreshPresence(_ batch: [HubPresenceEntry]) async throws -> [HubPresenceEntry] {
        await presenceGate.pass()
        var lapsed: [HubPresenceEntry] = []
        for entry in batch {
            if presence.contains(Self.key(entry)) { presenceRefreshed.append(Self.key(entry)) } else { lapsed.append(entry) }
        }
        return lapsed
    }

    // MARK: - HubMaintenanceHost

    /// No room watches here (`message_unseen` is the realtime hub's).
    func roomWatches() -> [RoomWatch] { [] }
    func stillWatching(_ batch: [RoomWatch]) -> [RoomWatch] { [] }

    func presenceEntries() -> [HubPresenceEntry] {
        users.sorted { $0.key < $1.key }.flatMap { socket, channels in
            channels.sorted { $0.key < $1.key }.map { (channel: $0.key, user: $0.value, socket: socket) }
        }
    }

    func stillHeld(_ batch: [HubPresenceEntry]) -> [HubPresenceEntry] {
        batch.filter { registry.isSubscribed(socket: $0.socket, channel: $0.channel) && users[$0.socket]?[$0.channel] == $0.user }
    }

    func restorePresence(_ entry: HubPresenceEntry) {
        guard !stillHeld([entry]).isEmpty else { return }
        restored.append(Self.key(entry))
        presence.insert(Self.key(entry))
    }

    func subscriptionEntries() -> [HubSubscriptionEntry] {
        registry.subscriptions.sorted { ($0.socket, $0.channel) < ($1.socket, $1.channel) }
    }

    func stillSubscribed(_ batch: [HubSubscriptionEntry]) -> [HubSubscriptionEntry] {
        registry.stillSubscribed(batch, channel: \.channel, socket: \.socket)
    }

    func checkActivity() {}

    func load() -> (subscriptions: Int, peak: Int, sockets: Int) {
        (registry.subscriptionCount, registry.peakSubscriptions, registry.sockets.count)
    }

    func compact() {
        compactions += 1
        registry.resetPeak()
        registry.compact()
    }
}
