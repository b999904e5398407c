/// What the unseen watcher's step on one room decided (`unseen_claim.lua`): the notices it is to send now, how many it
/// dropped because their member saw the room meanwhile, and when the room needs a look again.
public struct UnseenClaim: Sendable, Equatable {
    /// Claimed for this caller: send each (idempotently), then mark it done.
    public var notices: [UnseenNotice]
    /// Notices dropped at their time: the member was present or subscribed (or the room is gone).
    public var suppressed: Int
    /// When the room needs the watcher again (ms, Redis's clock); `nil`: nothing is left.
    public var next: Int64?

    public init(notices: [UnseenNotice], suppressed: Int, next: Int64?) {
        self.notices = notices
        self.suppressed = suppressed
        self.next = next
    }
}
