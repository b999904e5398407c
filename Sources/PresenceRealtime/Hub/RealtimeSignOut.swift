import Logging
import PresenceCore

/// What a logout does to realtime access (docs/security.md): the channel signatures `/pusher/auth` recorded
/// for the user are forgotten, then every worker is told (`{"signout": <user>}` on ``RedisKeys/pusherControl``) and
/// ends the user's governed subscriptions and signed-in connections (``RealtimeHub/signOut(_:)``). A logout of one
/// session ends them on all the user's devices: a socket is not tied to the session that signed for it, so the other
/// devices, whose sessions still stand, sign again through `/pusher/auth` (pusher-js does it on resubscribe).
package struct RealtimeSignOut: Sendable {
    package init(access: ChannelAccess, events: any EventPublisher, logger: Logger) {
        self.access = access
        self.events = events
        self.logger = logger
    }

    let access: ChannelAccess
    let events: any EventPublisher
    let logger: Logger

    /// Best effort, like any publish: the sessions already ended; a failure is logged at error level.
    package func signOut(_ user: String) async {
        do {
            try await access.endGrants(of: user)
        } catch {
            logger.error("Channel grants of a signed-out user could not be forgotten", metadata: ["user": "\(user)", "error": "\(error)"])
        }
        do {
            try await events.signOut(user: user)
        } catch {
            logger.error("Sign-out could not be announced to the workers; live sockets keep their subscriptions", metadata: [
                "user": "\(user)", "error": "\(error)",
            ])
        }
    }
}
