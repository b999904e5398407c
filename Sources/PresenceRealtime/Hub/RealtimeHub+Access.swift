import Logging
import Metrics
import NIOCore
import NIOWebSocket
import PresenceCore
import Synchronization

/// Access as the hub keeps it: the access changes heard of (a subscribe racing one checks again), sign-outs, re-checks
/// of the subscriptions a change concerns, and revocations (the socket leaves the channel through the registry).
extension RealtimeHub {
    /// The access epoch: how many access changes this worker has heard of. A subscribe reads it before its access
    /// check.
    var accessEpoch: UInt64 { accessChanges.epoch }

    /// Whether an access change that may concern `holder`'s subscription to `channel` arrived after `epoch`. Asked
    /// once the subscription is registered (holder set, socket in the channel): a change arriving later finds it.
    func accessChanged(since epoch: UInt64, channel: String, holder: String) -> Bool {
        accessChanges.mayConcern(since: epoch, channel: channel, holder: holder)
    }

    /// `user` signed out somewhere (a logout or logout-all on any worker, which also forgot their grants): on this
    /// worker their governed subscriptions end as when access ends (AccessRevoked; ryOS's `subscription_error`), a
    /// ryOS socket opened with their ticket becomes anonymous, and a connection signed in as them is closed (4009),
    /// as `terminate_connections` does. Their public subscriptions on other connections stay.
    func signOut(_ user: String) {
        // First, so a subscribe of theirs still in its access check checks again.
        accessChanges.record(AccessChange(user: user, prefix: ""))
        var ended: [(socket: PusherSocket, channel: String)] = []
        for socket in registry.sockets.values {
            let (channels, signedIn) = socket.state.withLock { state -> ([String], Bool) in
                if state.ryosUser == user { state.ryosUser = nil }
                let channels = state.holders.filter { ChannelAccess.isGoverned($0.key) && $0.value == user }.map(\.key)
                return (channels, state.signedIn == user)
            }
            for channel in channels { ended.append((socket, channel)) }
            if signedIn { socket.close(.unknown(4009), "Signed out") }
        }
        guard !ended.isEmpty else { return }
        Task {
            for (socket, channel) in ended { await self.revoke(socket, channel: channel) }
        }
    }

    /// Re-checks the subscriptions `change` concerns on this worker's sockets and ends those no longer allowed. A
    /// subscription to a governed channel with no holder (none should exist: a subscribe needs one) is ended.
    func recheck(_ change: AccessChange) async {
        var targets: [(socket: PusherSocket, channel: String, holder: String)] = []
        var holderless: [(socket: PusherSocket, channel: String)] = []
        for (channel, state) in registry.channels where ChannelAccess.isGoverned(channel) {
            guard change.channels.contains(channel) || change.prefix.map({ channel.hasPrefix($0) }) == true else { continue }
            for id in state.members {
                guard let socket = registry.sockets[id] else { continue }
                guard let holder = socket.holder(on: channel) else {
                    holderless.append((socket, channel))
                    continue
                }
                guard change.concerns(channel: channel, holder: holder) else { continue }
                targets.append((socket, channel, holder))
            }
        }
        for target in holderless { await revoke(target.socket, channel: target.channel) }
        var verdicts: [String: Bool] = [:]
        for target in targets {
            let key = target.channel + "\u{0}" + target.holder
            if verdicts[key] == nil {
                do {
                    verdicts[key] = try await access.allows(target.channel, user: target.holder)
                } catch {
                    logger.warning("Access re-check failed; the subscription stays", metadata: [
                        "channel": "\(target.channel)", "error": "\(error)",
                    ])
                    continue
                }
            }
            if verdicts[key] == false { await revoke(target.socket, channel: target.channel) }
        }
    }

    /// Ends one subscription whose access ended: the client is told (`pusher:subscription_error`, AccessRevoked,
    /// 403; a ryOS socket ryOS's `subscription_error`), the socket leaves the channel and its presence there is
    /// removed and announced.
    func revoke(_ socket: PusherSocket, channel: String) async {
        let (subscribed, user) = socket.takeChannel(channel)
        guard subscribed else { return }
        Counter(label: "subscriptions_revoked_total").increment()
        switch socket.face {
        case .pusher:
            socket.send(PusherProtocol.subscriptionError(
                channel: channel, type: "AccessRevoked", error: "Access to this channel ended", status: 403
            ))
        case .ryos:
            socket.send(RyOSRealtimeProtocol.subscriptionError(channel: channel))
        case .echo:
            break  // never in the hub
        }
        await leave(socket, channel: channel, user: user)
    }
}
