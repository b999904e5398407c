/// A room taken from a lease index by a watcher (the unseen index; the unattended tickets' `DueWaiting`), leased until
/// `leasedUntil` (ms, Redis's clock):
/// another worker's watcher does not take it meanwhile.
public struct LeasedRoom: Sendable, Equatable {
    public var room: String
    public var leasedUntil: Int64

    public init(room: String, leasedUntil: Int64) {
        self.room = room
        self.leasedUntil = leasedUntil
    }
}
