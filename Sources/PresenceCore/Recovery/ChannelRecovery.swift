/// The answer to a subscriber's recovery (``ChannelRecoveryStorage/recover(channel:from:)``).
public struct ChannelRecovery: Sendable, Equatable {
    /// The channel's current epoch and latest offset.
    public var position: ChannelPosition
    /// The subscriber's position was of this epoch and within the window: ``events`` are exactly what came after it.
    public var recovered: Bool
    /// The events after the subscriber's position, in order, each as its pub/sub text (with its `offset` and `epoch`).
    public var events: [String]

    public init(position: ChannelPosition, recovered: Bool, events: [String] = []) {
        self.position = position
        self.recovered = recovered
        self.events = events
    }

    /// The `recovery` object of a subscribe's answer: `{"recovered": ..., "epoch": ..., "offset": ...}`.
    public var json: JSONValue {
        .object(["recovered": .bool(recovered), "epoch": .string(position.epoch), "offset": .int(position.offset)])
    }
}
