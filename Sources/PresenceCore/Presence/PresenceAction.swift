/// What happened to a user's presence in a room, as `presence-update` says it (`action`).
public enum PresenceAction: String, Sendable {
    case joined
    /// Left on request, on the last socket's disconnect, or by expiry.
    case left
}
