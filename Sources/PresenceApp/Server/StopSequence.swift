import Foundation
import Logging
import PresenceCore
import PresenceRedis
import PresenceRealtime
import PresenceHTTP
import ServiceLifecycle
import Synchronization

/// The first step of a worker's stop, and its deadline.
///
/// Registered last in the process's service group, it is the first to hear SIGTERM/SIGINT. It then:
/// 1. has the hub close every WebSocket with 4200 (new ones are refused with 4200), wait for close replies up to a
///    short grace, drop the sockets that did not answer, and remove every socket's presence, announcing the leaves,
///    while Redis is connected;
/// 2. returns, so the group stops the application: the listener closes, in-flight HTTP requests finish, then the
///    sweeper stops and Redis closes.
///
/// A watchdog holds the whole stop to `SHUTDOWN_TIMEOUT`: half a second before it, every connection still open is
/// closed and long waits are cut (the `deadline` latch); if the process still runs half a second after it, it logs what
/// happened and exits with status 1.
final class StopSequence: Service, Sendable {
    let hub: RealtimeHub
    let registry: ConnectionRegistry
    let deadline: Latch
    let timeout: Duration
    let logger: Logger

    private let began = Mutex<ContinuousClock.Instant?>(nil)

    init(hub: RealtimeHub, registry: ConnectionRegistry, deadline: Latch, timeout: Duration, logger: Logger) {
        self.hub = hub
        self.registry = registry
        self.deadline = deadline
        self.timeout = timeout
        self.logger = logger
    }

    /// How long the stop has taken so far, for the last log line.
    var elapsedMetadata: Logger.Metadata {
        guard let began = began.withLock({ $0 }) else { return [:] }
        return ["elapsed_ms": "\((ContinuousClock.now - began).milliseconds)"]
    }

    /// How long sockets get to answer the 4200 close before they are dropped.
    var closeGrace: Duration { min(.seconds(2), timeout / 4) }

    func run() async throws {
        try? await gracefulShutdown()
        let started = ContinuousClock.now
        began.withLock { $0 = started }
        let websockets = await hub.socketCount
        logger.info("Stopping", metadata: [
            "websockets": "\(websockets)", "connections": "\(registry.count)",
            "shutdown_timeout_s": "\(timeout.components.seconds)",
        ])
        startWatchdog(started: started)
        await hub.drain(grace: closeGrace)
        logger.info("WebSockets closed; finishing in-flight requests", metadata: [
            "elapsed_ms": "\((ContinuousClock.now - started).milliseconds)", "connections": "\(registry.count)",
        ])
    }

    private func startWatchdog(started: ContinuousClock.Instant) {
        let registry = registry, deadline = deadline, timeout = timeout, logger = logger
        Task.detached {
            try? await Task.sleep(until: started + timeout - .milliseconds(500), clock: .continuous)
            let open = registry.count
            if open > 0 {
                logger.warning("Stop deadline: closing connections still open", metadata: ["connections": "\(open)"])
            }
            deadline.open()
            registry.closeAll()
            try? await Task.sleep(until: started + timeout + .milliseconds(500), clock: .continuous)
            logger.error("Stop did not finish within SHUTDOWN_TIMEOUT; exiting", metadata: [
                "shutdown_timeout_s": "\(timeout.components.seconds)", "connections": "\(registry.count)",
            ])
            exit(1)
        }
    }
}
