import Foundation
import Logging
import PresenceCore
import PresenceRedis
import PresenceRealtime
import PresenceHTTP
import ServiceLifecycle

/// One-off work at start-up that needs Redis: creating the default rooms, the admin accounts of `ADMIN_USERS`
/// that do not exist yet (with `ADMIN_PASSWORD`, when set), and moving an earlier version's data layout over
/// (``AppServices/migrations``). Retries until Redis answers, so a worker may start
/// before Redis does.
struct StartupTasks: Service {
    let chat: ChatService
    let users: UserDirectory
    let migrations: [(name: String, run: @Sendable () async throws -> Int)]
    let admins: AdminRoster
    let adminPassword: String?
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var delay = Duration.milliseconds(100)
            while !Task.isCancelled {
                do {
                    try await ensureAdmins()
                    try await chat.ensureDefaultRooms()
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

    /// Creates the missing admin accounts (with `ADMIN_PASSWORD`), and grants admin rights to the names whose account
    /// the bootstrap made. A name whose account somebody registered before it was listed gets none, and is logged.
    private func ensureAdmins() async throws {
        if adminPassword == nil && !admins.configured.isEmpty {
            logger.notice("ADMIN_PASSWORD is not set: admin accounts of ADMIN_USERS that do not exist are not created")
        }
        for name in admins.configured.sorted() {
            // An existing account's password is its own now.
            if let adminPassword, try await users.registerBootstrapAdmin(username: name, password: adminPassword) {
                logger.info("Created admin account", metadata: ["user": "\(name)"])
            }
            if try await users.isBootstrapAdmin(name) {
                admins.confirm(name)
                logger.info("Admin rights granted", metadata: ["user": "\(name)"])
            } else if try await users.existing([name]).first == true {
                logger.error("ADMIN_USERS names an account that was registered by a user, not created from ADMIN_PASSWORD: it gets no admin rights. If that account is really the admin's, mark it (redis-cli HSET 'user:{\(name)}' admin bootstrap) and restart", metadata: ["user": "\(name)"])
            }
        }
    }
}
