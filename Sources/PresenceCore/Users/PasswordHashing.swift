/// Turns passwords into stored hashes and checks them. The service's one is bcrypt
/// (`BcryptPasswordHasher` in PresenceIntegrations), run off the event loops.
public protocol PasswordHashing: Sendable {
    /// A hash of `password` to store.
    func hash(_ password: String) async throws -> String
    /// Whether `password` matches a stored `hash`.
    func verify(_ password: String, hash: String) async throws -> Bool
    /// A real hash of a random secret, made once at start: unknown users are checked against it so that timing
    /// does not tell them apart from wrong passwords.
    func makeDecoyHash() -> String
}
