import PresenceCore
import Synchronization

/// When a client last said something, and whether the server has pinged it since: Pusher's `activity_timeout` /
/// `pong_timeout` rule. A socket silent for `activityTimeout` gets a `pusher:ping`; silent `pongTimeout` longer, it
/// is dead.
package final class SocketActivity: Sendable {
    /// What the socket needs now.
    enum Verdict: Equatable {
        case alive
        case ping
        case dead
    }

    private struct State {
        var last = ContinuousClock.now
        var pinged = false
    }

    private let state = Mutex(State())

    /// The client sent something (any message, a pong included).
    func touch() {
        state.withLock { $0 = State() }
    }

    /// Silence so far.
    var silence: Duration { ContinuousClock.now - state.withLock { $0.last } }

    /// Decides at `now`; `.ping` is returned once per silence, and the caller sends the ping.
    func verdict(now: ContinuousClock.Instant, activityTimeout: Duration, pongTimeout: Duration) -> Verdict {
        state.withLock { state in
            let silence = now - state.last
            if silence >= activityTimeout + pongTimeout { return .dead }
            if silence >= activityTimeout && !state.pinged {
                state.pinged = true
                return .ping
            }
            return .alive
        }
    }
}
