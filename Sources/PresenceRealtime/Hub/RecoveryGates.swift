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
        /// Live events kept until the release: each with its offset and epoch.
        case holding([(offset: Int, epoch: String, frame: Frame)])
        /// Released at this position: live events at or before it are dropped.
        case floor(ChannelPosition)
    }

    /// channel → socket id → its gate.
    private var gates: [String: [String: Gate]] = [:]

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
            kept.append((offset, epoch, frame))
            gates[channel]?[socket] = .holding(kept)
            return false
        case .floor(let floor):
            guard let offset, let epoch else { return true }
            if epoch == floor.epoch && offset <= floor.offset { return false }
            remove(socket: socket, channel: channel)
            return true
        }
    }

    /// Ends the hold at `position` (the one read from Redis; `nil`: unknown, everything kept goes out): returns the kept
    /// frames to write now, in order (those after the position, or of another epoch), and leaves a floor at `position`.
    package mutating func release(socket: String, channel: String, at position: ChannelPosition?) -> [Frame] {
        guard case .holding(let kept)? = gates[channel]?[socket] else { return [] }
        guard let position else {
            remove(socket: socket, channel: channel)
            return kept.map(\.frame)
        }
        let out = kept.filter { $0.epoch != position.epoch || $0.offset > position.offset }
        if out.isEmpty {
            gates[channel]?[socket] = .floor(position)
        } else {
            // Something beyond the position arrived already: later live events are beyond it too.
            remove(socket: socket, channel: channel)
        }
        return out.map(\.frame)
    }

    /// Forgets `socket`'s gate on `channel` (it left).
    package mutating func remove(socket: String, channel: String) {
        gates[channel]?[socket] = nil
        if gates[channel]?.isEmpty == true { gates[channel] = nil }
    }

    /// Forgets `socket`'s gates on `channels` (it closed).
    package mutating func remove(socket: String, channels: some Sequence<String>) {
        for channel in channels { remove(socket: socket, channel: channel) }
    }
}
