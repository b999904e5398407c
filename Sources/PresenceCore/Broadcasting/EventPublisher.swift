/// Where events for clients go: every worker receives them and delivers them to its sockets. Publishing is best
/// effort: the state change that caused an event has happened, so a failure is logged and counted, never thrown.
public protocol EventPublisher: Sendable {
    /// Publishes `events`, in order.
    func publish(_ events: [BroadcastEvent]) async
    /// Publishes `events`, in order, and throws when they could not be handed over (for callers that must report it).
    func deliver(_ events: [BroadcastEvent]) async throws
    /// Tells every worker that someone's access to some channels may have ended.
    func publish(_ change: AccessChange) async
    /// Tells every worker to close `user`'s sockets (Pusher's terminate_connections).
    func terminate(user: String) async throws
    /// Tells every worker that `user` signed out (a logout, logout-all): their governed subscriptions and signed-in
    /// connections end everywhere.
    func signOut(user: String) async throws
    /// Publishes without waiting; events given one `orderKey` go out in call order.
    func publishDetached(_ events: [BroadcastEvent], orderKey: String)
}
