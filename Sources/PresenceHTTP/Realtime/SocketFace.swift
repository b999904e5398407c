/// Which protocol a client WebSocket speaks; the hub, its fan-out and its channel rules are the same for both.
enum SocketFace: Sendable, Equatable {
    /// Pusher Channels (`/app/<key>`): pusher-js, pysher and Pusher's other client libraries.
    case pusher
    /// ryOS's `local` realtime provider (`/ws`): its own JSON frames (``RyOSRealtimeProtocol``), authenticated by a
    /// single-use ticket; no `pusher:` or `pusher_internal:` frame ever goes to it.
    case ryos
}
