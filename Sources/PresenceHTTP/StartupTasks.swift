import Foundation
import Logging
import PresenceCore
import ServiceLifecycle

/// One-off work at start-up that needs Redis: creating the default rooms. Retries until Redis answers, so a worker
/// may start before Redis does.
struct StartupTasks: Service {
    let chat: ChatService
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var delay = Duration.milliseconds(100)
            while !Task.isCancelled {
                do {
                    try await chat.ensureDefaultRooms()
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
}
