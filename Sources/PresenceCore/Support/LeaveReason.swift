/// Why a member left a support ticket, as `member-left` says it (`reason`).
public enum LeaveReason: String, Sendable {
    /// They left on request (or were removed as an agent).
    case left
    /// The ticket closed.
    case closed
    /// Their presence expired (no heartbeat).
    case expired
}
