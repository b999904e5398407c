import Synchronization

/// Holds the next call that passes it (once armed) until released, so a test can act while that call is in flight;
/// `entered()` returns once a call is held. No timing: the test waits on the gate, not on a clock.
public final class Gate: Sendable {
    private struct State {
        var armed = false
        var held: CheckedContinuation<Void, Never>?
        var waiting: CheckedContinuation<Void, Never>?
        var isIn = false
        var released = false
    }

    private let state = Mutex(State())

    public init() {}

    /// The next call to ``pass()`` is held.
    public func arm() { state.withLock { $0 = State(armed: true) } }

    /// Called by the gated call: held when armed.
    public func pass() async {
        let hold = state.withLock { state -> Bool in
            guard state.armed else { return false }
            state.armed = false
            return true
        }
        guard hold else { return }
        await withCheckedContinuation { continuation in
            let (waiting, releasedAlready) = state.withLock { state -> (CheckedContinuation<Void, Never>?, Bool) in
                state.isIn = true
                if state.released { return (state.waiting.take(), true) }
                state.held = continuation
                return (state.waiting.take(), false)
            }
            waiting?.resume()
            if releasedAlready { continuation.resume() }
        }
    }

    /// Returns once a call is held.
    public func entered() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.isIn { return true }
                state.waiting = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Lets the held call go on.
    public func release() {
        state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.released = true
            return state.held.take()
        }?.resume()
    }
}
