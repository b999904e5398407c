import Foundation
import Logging
import PresenceCore
import ServiceLifecycle

/// One-off work at start-up that needs Redis: creating the default rooms, the admin accounts of `ADMIN_USERS`
/// that do not exist yet (with `ADMIN_PASSWORD`, when set), and moving an earlier version's data layout over
/// (``AppServices/migrations``). Retries until Redis answers, so a worker may start
/// before Redis does.
struct StartupTasks: Service {
    let chat: ChatService
    let users: UserDirectory
    let migrations: [(name: String, run: @Sendable () async throws -> Int)]
    let admins: Set<String>
    let adminPassword: String?
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var delay = Duration.milliseconds(100)
            while !Task.isCancelled {
                do {
                    try await chat.ensureDefaultRooms()
                    try await ensureAdmins()
                    for migration in migrations {
                        let moved = try await migration.run()
                        if moved > 0 { logger.notice("Moved data from an earlier layout", metadata: ["what": "\(migration.name)", "entries": "\(moved)"]) }
                    }
                    return
                } catch {
                    logger.warning("Creating default rooms failed; retrying", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(5))
                }
            }
        }
        try? await gracefulShutdown()
    }

    private func ensureAdmins() async throws {
        if adminPassword == nil && !admins.isEmpty {
            logger.notice("ADMIN_PASSWORD is not set: admin accounts of ADMIN_USERS that do not exist are not created")
        }
        guard let adminPassword else { return }
        for name in admins.sorted() {
            do {
                try await users.register(username: name, password: adminPassword)
                logger.info("Created admin account", metadata: ["user": "\(name)"])
            } catch DomainError.conflict(_) {
                // Exists: its password is its own now.
            }
        }
    }
}
