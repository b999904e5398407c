import Logging
import PresenceCore

/// The hub's periodic work: liveness (pings, 4201) every tick, this worker's presence and occupancy refreshed in Redis
/// in bounded batches, lapsed channels settled (webhooks on), and memory handed back after many subscriptions ended.
///
/// Each refresh plans once, but checks every batch against the hub's registry when it goes out
/// (``HubMaintenanceHost/stillHeld(_:)``, ``HubMaintenanceHost/stillSubscribed(_:)``): what left meanwhile is not sent,
/// and Redis refreshes only entries still recorded (`socket_refresh.lua`, `occupancy_refresh.lua`), so a leave landing
/// while a batch is in flight is never undone (no `channel_occupied` after its `channel_vacated`, no presence back).
package struct HubMaintenance: Sendable {
    /// When to hand memory back: after most of the subscriptions went away (a flood that ended) and the counts have
    /// settled (memory freed after a trim would stay with the process), and once more a little later for the
    /// departures' last work.
    package struct MemoryTrim: Sendable {
        /// What to do at a tick.
        package struct Decision: Equatable, Sendable {
            /// Shrink the tables and hand memory back now.
            package var compact = false
            /// Hand memory back again now (the second, later trim).
            package var trim = false
        }

        /// How many subscriptions must have ended since the peak.
        package static let drop = 1000
        /// How long after a compaction memory is handed back once more.
        package static let again = Duration.seconds(5)

        private var subscriptionsAtLastTick = 0
        private var socketsAtLastCheck = 0
        private var trimAgainAt: ContinuousClock.Instant?

        /// Nothing seen yet.
        package init() {}

        /// One tick's decision for the load now.
        package mutating func tick(subscriptions: Int, peak: Int, sockets: Int, now: ContinuousClock.Instant) -> Decision {
            defer { subscriptionsAtLastTick = subscriptions }
            var decision = Decision()
            if let at = trimAgainAt, now >= at {
                trimAgainAt = nil
                decision.trim = true
            }
            guard peak - subscriptions >= Self.drop, subscriptions <= peak / 2 else { return decision }
            guard subscriptions == subscriptionsAtLastTick, sockets == socketsAtLastCheck else {
                socketsAtLastCheck = sockets
                return decision
            }
            trimAgainAt = now + Self.again
            decision.compact = true
            return decision
        }
    }

    let host: any HubMaintenanceHost
    /// Refreshes presence entries in Redis, answering those that had lapsed (``ChannelPresence/refresh(_:)``).
    let refreshPresenceBatch: @Sendable ([HubPresenceEntry]) async throws -> [HubPresenceEntry]
    let occupancy: any OccupancyStorage
    /// How long a socket's subscription counts in Redis without a refresh (`OCCUPANCY_TTL`).
    let occupancyTTL: Duration
    /// The most Redis calls one refresh batch makes (a presence entry makes two).
    let batchSize: Int
    /// How often presence is refreshed (a third of its TTL).
    let presenceEvery: Duration
    /// How often liveness is checked.
    let tick: Duration
    /// Whether lapsed channels are settled (webhooks on).
    let settlesLapsed: Bool
    /// Where the room watches (``RoomWatch``) are refreshed with the occupancy (`nil`: `message_unseen` is off).
    let unseen: UnseenMessages?
    let logger: Logger

    /// Maintenance of `host`, refreshing in batches of at most `batchSize` Redis calls.
    ///
    /// - Parameters:
    ///   - presenceTTL: how long a presence lasts without a refresh; refreshed every third of it.
    ///   - pongTimeout: Pusher's `pong_timeout` in seconds; liveness is checked four times within it (0.1 s to 1 s).
    package init(
        host: any HubMaintenanceHost, occupancy: any OccupancyStorage, occupancyTTL: Duration, presenceTTL: Duration,
        pongTimeout: Int, batchSize: Int, settlesLapsed: Bool, logger: Logger,
        refreshPresence: @escaping @Sendable ([HubPresenceEntry]) async throws -> [HubPresenceEntry],
        unseen: UnseenMessages? = nil
    ) {
        self.unseen = unseen
        self.host = host
        self.occupancy = occupancy
        self.occupancyTTL = occupancyTTL
        self.batchSize = max(2, batchSize)
        self.presenceEvery = .milliseconds(max(200, presenceTTL.milliseconds / 3))
        self.tick = .milliseconds(max(100, min(1000, pongTimeout * 1000 / 4)))
        self.settlesLapsed = settlesLapsed
        self.logger = logger
        self.refreshPresenceBatch = refreshPresence
    }

    /// The periodic work until cancelled.
    package func run() async {
        var lastPresence = ContinuousClock.now, lastOccupancy = ContinuousClock.now, lastSettle = ContinuousClock.now
        let settleEvery = Duration.milliseconds(max(250, min(2000, occupancyTTL.milliseconds / 4)))
        var trim = MemoryTrim()
        while !Task.isCancelled {
            try? await Task.sleep(for: tick)
            await host.checkActivity()
            let now = ContinuousClock.now
            if now - lastPresence >= presenceEvery {
                lastPresence = now
                await refreshPresence()
            }
            if now - lastOccupancy >= occupancyTTL / 3 {
                lastOccupancy = now
                await refreshOccupancy()
                await refreshRoomWatches()
            }
            if settlesLapsed, now - lastSettle >= settleEvery {
                lastSettle = now
                await settleLapsedChannels()
            }
            let load = await host.load()
            let decision = trim.tick(subscriptions: load.subscriptions, peak: load.peak, sockets: load.sockets, now: .now)
            if decision.compact {
                await host.compact()
                logger.debug("Memory handed back after many subscriptions ended", metadata: ["subscriptions": "\(load.subscriptions)"])
            }
            if decision.compact || decision.trim { MemoryRelease.trim() }
        }
    }

    /// Refreshes this worker's presence in Redis, a bounded batch per round trip, each batch checked against the hub
    /// as it goes out; an entry Redis no longer had is restored by the hub if the socket still holds it.
    package func refreshPresence() async {
        let entries = await host.presenceEntries()
        let size = batchSize / 2
        for start in stride(from: 0, to: entries.count, by: size) {
            let batch = await host.stillHeld(Array(entries[start..<min(start + size, entries.count)]))
            guard !batch.isEmpty else { continue }
            do {
                let lapsed = try await refreshPresenceBatch(batch)
                for entry in lapsed { await host.restorePresence(entry) }
            } catch {
                logger.debug("Presence refresh failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Refreshes this worker's channel occupancy in Redis, a bounded batch per round trip, each batch checked against
    /// the hub as it goes out. An entry that lapsed while its socket is still here (a stall, Redis restarted empty) is
    /// touched again, which announces what that changes.
    package func refreshOccupancy() async {
        let pairs = await host.subscriptionEntries()
        for start in stride(from: 0, to: pairs.count, by: batchSize) {
            let batch = await host.stillSubscribed(Array(pairs[start..<min(start + batchSize, pairs.count)]))
            guard !batch.isEmpty else { continue }
            do {
                let lapsed = try await occupancy.refresh(batch, ttl: occupancyTTL)
                for index in lapsed where batch.indices.contains(index) { await restoreOccupancy(batch[index]) }
            } catch {
                logger.debug("Occupancy refresh failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Refreshes this worker's room watches in Redis, in bounded batches, with the occupancy's TTL, each batch checked
    /// against the hub as it goes out and again once it is back: a watch that ended while its refresh was on the way
    /// (whose removal may have reached Redis first) is taken back, as ``restoreOccupancy(_:)`` does for occupancy.
    package func refreshRoomWatches() async {
        guard let unseen else { return }
        let watches = await host.roomWatches()
        for start in stride(from: 0, to: watches.count, by: batchSize) {
            let batch = await host.stillWatching(Array(watches[start..<min(start + batchSize, watches.count)]))
            guard !batch.isEmpty else { continue }
            do {
                try await unseen.refresh(batch, ttl: occupancyTTL)
            } catch {
                logger.debug("Room watch refresh failed", metadata: ["error": "\(error)"])
            }
            let kept = Set(await host.stillWatching(batch))
            await unseen.unwatch(batch.filter { !kept.contains($0) })
        }
    }

    /// A subscription whose occupancy entry was gone or lapsed at a refresh: recorded again if the socket is still on
    /// the channel, and taken back if it left while that was on its way.
    private func restoreOccupancy(_ entry: HubSubscriptionEntry) async {
        guard !(await host.stillSubscribed([entry])).isEmpty else { return }
        _ = try? await occupancy.touch([entry], ttl: occupancyTTL)
        if (await host.stillSubscribed([entry])).isEmpty { _ = try? await occupancy.remove(channel: entry.channel, socket: entry.socket) }
    }

    /// Channels whose subscribers all lapsed (their worker died): vacated, announced once by whichever worker settles
    /// them (each vacated channel's webhook is written by the script that settled it).
    package func settleLapsedChannels() async {
        do {
            _ = try await occupancy.settleLapsed(limit: RealtimeHub.refreshBatchSize)
        } catch {
            logger.debug("Settling lapsed channels failed", metadata: ["error": "\(error)"])
        }
    }
}
