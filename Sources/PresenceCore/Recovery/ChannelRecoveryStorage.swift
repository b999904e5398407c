/// Where recoverable channels' positions and retained events are read (Redis: `recovery_read.lua`). The events get
/// there as they are published (``EventPublisher``, `recovery_publish.lua`).
public protocol ChannelRecoveryStorage: Sendable {
    /// The channel's current position and, when `position` is of its epoch and within the window, every event after
    /// it. `position` `nil`: only the current position (``ChannelRecovery/recovered`` is `false`).
    func recover(channel: String, from position: ChannelPosition?) async throws -> ChannelRecovery
}
