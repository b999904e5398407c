import PresenceCore

/// The boundary between a recoverable subscription's catch-up and its live events, as a plain value (tested without
/// sockets: `RecoveryGatesTests`).
///
/// A subscribe on a recoverable channel is *held* from before its socket joins the channel until the hub has read the
/// channel's position (and the events the client missed) from Redis: live events for the socket meanwhile are kept
/// here, not written. Then it is *released* at the position read: the kept events after it are sent, those at or before
/// it dropped (the catch-up has them, or they precede what the client asked for), and the socket keeps a *floor* at
/// that position until the first live event beyond it arrives. A live event can reach the worker after the read
/// although it was published before it (pub/sub and the read travel on different connections); the floor drops it.
/// An event of another epoch (the channel's history was lost meanwhile) always goes through and ends the gate.
package struct RecoveryGates<Frame> {
    enum Gate {
        /// Live events kept until the release: each with its offset and epoch; no frame for the socket's own client
        /// events, which it is not sent but which count as seen (``ownEvent(socket:channel:offset:epoch:)``).
        case holding([(offset: Int, epoch: String, frame: Frame?)])
        /// Released at this position: live events at or before it are dropped.
        case floor(ChannelPosition)
    }

    /// channel → socket id → its gate.
    private var gates: [String: [String: Gate]] = [:]
    /// Gaps a socket's own gate showed (an offset skipped right after its floor or its release position): the socket
    /// is held again, and the driver fills what it missed from `from` (``takeGaps()``).
    private var gaps: [(socket: String, channel: String, from: ChannelPosition)] = []

    package init() {}

    /// Whether any socket on `channel` has a gate (the hub checks per socket only then).
    package func isGated(_ channel: String) -> Bool { gates[channel] != nil }

    /// Whether `socket` has a gate on `channel`.
    package func isGated(socket: String, channel: String) -> Bool { gates[channel]?[socket] != nil }

    /// The number of gates (for tests and metrics).
    package var count: Int { gates.values.reduce(0) { $0 + $1.count } }

    /// Holds `socket`'s live events on `channel` until ``release(socket:channel:at:)``.
    package mutating func hold(socket: String, channel: String) {
        gates[channel, default: [:]][socket] = .holding([])
    }

    /// For a gap the feed left: holds `socket`'s live events on `channel` unless they are held already (`false` then).
    /// A socket released lately still has its floor: it is answered, so that what is filled in skips what the socket
    /// has (its subscribe's catch-up) or never asked for (before its position); the release after the fill sets the
    /// floor again.
    package mutating func holdForGap(socket: String, channel: String) -> (held: Bool, floor: ChannelPosition?) {
        switch gates[channel]?[socket] {
        case .holding?:
            return (false, nil)
        case .floor(let floor)?:
            gates[channel]?[socket] = .holding([])
            return (true, floor)
        case nil:
            gates[channel, default: [:]][socket] = .holding([])
            return (true, nil)
        }
    }

    /// A live event for `socket` on `channel`: `true` when it is to be written now. Kept while held; dropped at or
    /// below a floor; beyond a floor (or of another epoch) it is written and the gate is gone.
    package mutating func admit(_ frame: Frame, offset: Int?, epoch: String?, socket: String, channel: String) -> Bool {
        guard let gate = gates[channel]?[socket] else { return true }
        switch gate {
        case .holding(var kept):
            guard let offset, let epoch else { return true }  // not a recoverable event: nothing to order it by
            kept.append((offset, epoch, .some(frame)))
            gates[channel]?[socket] = .holding(kept)
            return false
        case .floor(let floor):
            guard let offset, let epoch else { return true }
            if epoch == floor.epoch && offset <= floor.offset { return false }
            if floor.skips(to: offset, epoch: epoch) {
                // The first event beyond the floor is not the next one: the socket missed some (the feed lost them
                // while its subscribe was being caught up). Held again, this one kept, until the gap is filled.
                gates[channel]?[socket] = .holding([(offset, epoch, .some(frame))])
                gaps.append((socket, channel, floor))
                return false
            }
            remove(socket: socket, channel: channel)
            return true
        }
    }

    /// A client event `socket` sent on `channel` (it is not sent back to it): counted as seen, so the offset it takes
    /// is not a gap in what the socket gets. Kept without a frame while held; past a floor, the floor moves to it (a
    /// skip before it is a gap as in ``admit(_:offset:epoch:socket:channel:)``).
    package mutating func ownEvent(socket: String, channel: String, offset: Int, epoch: String) {
        switch gates[channel]?[socket] {
        case .holding(var kept)?:
            kept.append((offset, epoch, nil))
            gates[channel]?[socket] = .holding(kept)
        case .floor(let floor)?:
            if epoch == floor.epoch && offset <= floor.offset { return }
            if floor.skips(to: offset, epoch: epoch) {
                gates[channel]?[socket] = .holding([(offset, epoch, nil)])
                gaps.append((socket, channel, floor))
            } else {
                gates[channel]?[socket] = .floor(ChannelPosition(epoch: epoch, offset: offset))
            }
        case nil:
            return
        }
    }

    /// The gaps recorded since the last call (``admit(_:offset:epoch:socket:channel:)``,
    /// ``release(socket:channel:at:checkingGaps:)``), each to fill for its socket from its position.
    package mutating func takeGaps() -> [(socket: String, channel: String, from: ChannelPosition)] {
        defer { gaps = [] }
        return gaps
    }

    /// Whether a gap waits for ``takeGaps()``.
    package var hasGaps: Bool { !gaps.isEmpty }

    /// Ends the hold at `position` (the one read from Redis; `nil`: unknown, everything kept goes out): returns the kept
    /// frames to write now, in order (those after the position, or of another epoch), and leaves a floor at `position`.
    /// When the first kept frame beyond the position is not the next one (`checkingGaps`), the socket missed events: it
    /// stays held, nothing is returned, and the gap is recorded for ``takeGaps()``.
    package mutating func release(socket: String, channel: String, at position: ChannelPosition?, checkingGaps: Bool = true) -> [Frame] {
        guard case .holding(let kept)? = gates[channel]?[socket] else { return [] }
        guard let position else {
            remove(socket: socket, channel: channel)
            return kept.compactMap(\.frame)
        }
        let out = kept.filter { $0.epoch != position.epoch || $0.offset > position.offset }
        if checkingGaps, let first = out.first, position.skips(to: first.offset, epoch: first.epoch) {
            gaps.append((socket, channel, position))
            return []
        }
        if out.isEmpty {
            gates[channel]?[socket] = .floor(position)
        } else {
            // Something beyond the position arrived already: later live events are beyond it too.
            remove(socket: socket, channel: channel)
        }
        return out.compactMap(\.frame)
    }

    /// Forgets `socket`'s gate on `channel` (it left).
    package mutating func remove(socket: String, channel: String) {
        gates[channel]?[socket] = nil
        if gates[channel]?.isEmpty == true { gates[channel] = nil }
        gaps.removeAll { $0.socket == socket && $0.channel == channel }
    }

    /// Forgets `socket`'s gates on `channels` (it closed).
    package mutating func remove(socket: String, channels: some Sequence<String>) {
        for channel in channels { remove(socket: socket, channel: channel) }
    }
}
