/// The access changes one worker has heard of, numbered in the order they arrived, so a subscribe can tell whether one
/// came in while its access check was running.
///
/// A subscribe reads ``epoch`` before it checks access, registers the subscription with its holder (from then on a
/// change that arrives finds it among the live subscriptions and re-checks it), and then asks
/// ``mayConcern(since:channel:holder:)``: when a change that may concern it arrived in between, it checks again. Either
/// way no change can fall between the check and the registration unseen.
///
/// At least the last ``capacity`` changes are kept; a question about an epoch older than that answers `true`, as does any
/// question spanning ``recordEverything()`` (the worker's pub/sub link came back and changes may have been missed).
public struct AccessChangeLog: Sendable {
    /// The number of changes recorded so far.
    public private(set) var epoch: UInt64 = 0
    /// How many changes are kept to answer with.
    public let capacity: Int
    /// The last changes, oldest first: `(epoch, change)`, `nil` for "anything may have changed".
    private var recent: [(epoch: UInt64, change: AccessChange?)] = []

    public init(capacity: Int = 1024) {
        self.capacity = max(1, capacity)
    }

    /// Records a change that arrived now.
    public mutating func record(_ change: AccessChange) {
        append(change)
    }

    /// Records that any access may have changed (changes may have been missed).
    public mutating func recordEverything() {
        append(nil)
    }

    /// Whether a change recorded after `since` may concern a subscription of `holder` to `channel` (`holder` `nil`:
    /// any change on the channel counts).
    public func mayConcern(since: UInt64, channel: String, holder: String?) -> Bool {
        guard since < epoch else { return false }
        // The oldest kept change is epoch - recent.count + 1: anything before it is forgotten, so assume the worst.
        guard since >= epoch - UInt64(recent.count) else { return true }
        for entry in recent.reversed() {
            guard entry.epoch > since else { break }
            guard let change = entry.change else { return true }
            if let holder {
                if change.concerns(channel: channel, holder: holder) { return true }
            } else if change.channels.contains(channel) || change.prefix.map({ channel.hasPrefix($0) }) == true {
                return true
            }
        }
        return false
    }

    private mutating func append(_ change: AccessChange?) {
        epoch += 1
        recent.append((epoch, change))
        // Trimmed in halves, so an append costs O(1) amortised.
        if recent.count >= 2 * capacity { recent.removeFirst(recent.count - capacity) }
    }
}
