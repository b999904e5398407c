/// Which protocol a client WebSocket speaks; the hub, its fan-out and its channel rules are the same for both.
package enum SocketFace: Sendable, Equatable {
    /// Pusher Channels (`/app/<key>`): pusher-js, pysher and Pusher's other client libraries.
    case pusher
    /// ryOS's `local` realtime provider (`/ws`): its own JSON frames (``RyOSRealtimeProtocol``), authenticated by a
    /// single-use ticket; no `pusher:` or `pusher_internal:` frame ever goes to it.
    case ryos
    /// Test-only (`WEBSOCKET_ECHO_PATH`, unset by default: no such path): every text and binary message is sent back
    /// unchanged, and nothing else is ever sent; not in the hub, no liveness check. The conformance cases
    /// (docs/websocket-conformance.md) run against it, through the same frame handlers and limits as the other faces.
    case echo
}
