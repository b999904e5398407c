import Synchronization

/// Who holds admin rights now. `ADMIN_USERS` names the admins, but a name only gets the rights once its account is
/// known to come from the bootstrap: created from `ADMIN_PASSWORD` (at start-up, or by the first admin login), which
/// marks the account (``UserDirectory/isBootstrapAdmin(_:)``). An account somebody registered before its name was put
/// in `ADMIN_USERS` is refused, and start-up logs it. Until start-up has looked, nobody is admin.
public final class AdminRoster: Sendable {
    /// The names `ADMIN_USERS` lists.
    public let configured: Set<String>
    private let confirmed: Mutex<Set<String>>

    /// `confirmed`: names known to be bootstrap accounts already (tests, in-memory twins); `nil`: none yet.
    public init(configured: Set<String>, confirmed: Set<String>? = nil) {
        self.configured = configured
        self.confirmed = Mutex(confirmed.map { $0.intersection(configured) } ?? [])
    }

    /// Whether `user` holds admin rights now.
    public func isAdmin(_ user: String) -> Bool {
        configured.contains(user) && confirmed.withLock { $0.contains(user) }
    }

    /// Grants a configured name its rights (its account is a bootstrap account).
    public func confirm(_ user: String) {
        guard configured.contains(user) else { return }
        _ = confirmed.withLock { $0.insert(user) }
    }
}
