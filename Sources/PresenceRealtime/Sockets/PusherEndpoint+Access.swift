import Logging
import PresenceCore

/// Why a subscription to a governed channel is refused, as a Pusher client is told (`pusher:subscription_error`).
package struct SubscriptionRefusal: Error, Equatable {
    var type: String
    var error: String
    var status: Int

    func frame(channel: String) -> String {
        PusherProtocol.subscriptionError(channel: channel, type: type, error: error, status: status)
    }

    /// No grant names whom the signature was given to (lapsed after 600 s, or forgotten at a logout): the client asks
    /// `/pusher/auth` again, which checks access and records a fresh grant.
    static let unsigned = SubscriptionRefusal(
        type: "AuthError", error: "Signature not current: ask /pusher/auth for a new one", status: 401
    )
    /// Whom the signature was given to has no access now.
    static let forbidden = SubscriptionRefusal(type: "AuthError", error: "Forbidden", status: 403)
    /// The check could not be made (Redis).
    static let failed = SubscriptionRefusal(type: "ServerError", error: "Subscription failed", status: 500)
}

/// Access to the channels this service governs (``ChannelAccess/isGoverned(_:)``), for both faces' subscribes.
///
/// A subscribe checks access, then registers the subscription with its holder (``PusherSocket/State/holders``, then
/// ``RealtimeHub/join(_:channel:)``). An access change that arrives before the registration would find nothing to
/// re-check, so the subscribe reads the hub's access epoch before its check and asks the hub after the registration
/// whether a change that may concern it came in since (``confirmAccess(_:holder:since:socket:)``); if so it checks
/// again. A change that arrives after the registration finds the subscription and re-checks it itself.
extension PusherEndpoint {
    /// Whether `socket` may subscribe now to governed `channel` with a valid signature (`user`: a presence channel's
    /// signed `user_id`): the user the subscription rides on, or the refusal.
    func admit(_ channel: String, user: String?, socket: PusherSocket) async -> Result<String, SubscriptionRefusal> {
        do {
            switch try await access.admit(channel: channel, socket: socket.id, user: user) {
            case .allowed(let holder): return .success(holder)
            case .unsigned: return .failure(.unsigned)
            case .forbidden: return .failure(.forbidden)
            }
        } catch {
            logger.warning("Channel access check failed", metadata: ["channel": "\(channel)", "error": "\(error)"])
            return .failure(.failed)
        }
    }

    /// After a governed subscription was registered with `holder`: when an access change that may concern it arrived
    /// since `epoch` (read before its access check), checks again the way it was checked first (a Pusher socket's
    /// grant and access, a ryOS socket's ticket user and access), and ends it if that no longer passes, telling the
    /// client. Returns whether the subscription stands.
    func confirmAccess(_ channel: String, holder: String, since epoch: UInt64, socket: PusherSocket) async -> Bool {
        guard await hub.accessChanged(since: epoch, channel: channel, holder: holder) else { return true }
        let refusal: SubscriptionRefusal?
        switch socket.face {
        case .ryos:
            do {
                let allowed = try await socket.ryosUser == holder ? access.allows(channel, user: holder) : false
                refusal = allowed ? nil : .forbidden
            } catch {
                logger.warning("Channel access check failed", metadata: ["channel": "\(channel)", "error": "\(error)"])
                refusal = .failed
            }
        default:
            let user = socket.user(on: channel)
            switch await admit(channel, user: user, socket: socket) {
            case .success(let again) where again == holder: refusal = nil
            case .success: refusal = .unsigned
            case .failure(let why): refusal = why
            }
        }
        guard let refusal else { return true }
        // Not subscribed any more: a revocation got there first and told the client.
        guard socket.takeChannel(channel).subscribed else { return false }
        // Presence was not attached yet: nothing of it to take back.
        await hub.leave(socket, channel: channel, user: nil)
        switch socket.face {
        case .ryos: socket.send(RyOSRealtimeProtocol.subscriptionError(channel: channel))
        default: socket.send(refusal.frame(channel: channel))
        }
        return false
    }
}
