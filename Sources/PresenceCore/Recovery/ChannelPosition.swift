/// Where a client is in a recoverable channel's history: the channel's epoch (a string that changes when its history
/// is lost) and the offset of the last event it has (offsets grow by one per event on the channel). A channel without
/// history yet is at epoch `none`, offset 0 (`recovery_read.lua`): a client there has missed nothing of the epoch that its first event
/// starts.
public struct ChannelPosition: Sendable, Equatable {
    public var epoch: String
    public var offset: Int

    public init(epoch: String, offset: Int) {
        self.epoch = epoch
        self.offset = offset
    }

    /// Whether an event at `offset` of `epoch`, arriving after this position, shows that events were skipped: a later
    /// offset than the next in the same epoch, or, from a channel that had no history (`none`, 0), any first event
    /// after offset 1 (its epoch started with events this position never saw).
    public func skips(to offset: Int, epoch: String) -> Bool {
        if self.epoch == epoch { return offset > self.offset + 1 }
        return self.epoch == "none" && self.offset == 0 && offset > 1
    }

    /// Reads a subscribe's `recover` object, `{"epoch": "E", "offset": N}`; `nil` when it is not one (an epoch of at
    /// most 64 characters, a whole offset from 0).
    public init?(json: JSONValue?) {
        guard let epoch = json?["epoch"]?.string, !epoch.isEmpty, epoch.utf8.count <= 64,
              let offset = json?["offset"]?.int, offset >= 0 else { return nil }
        self.init(epoch: epoch, offset: offset)
    }
}
