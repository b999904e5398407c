import NIOCore

/// What a ``RedisSubscriber`` delivers.
public enum RedisSubscriberEvent: Sendable, Equatable {
    /// A message published on a channel this subscriber listens to.
    case message(channel: String, payload: ByteBuffer)
    /// The connection was lost and is back, and every channel is subscribed again. Messages published
    /// meanwhile are gone (pub/sub is at-most-once): re-read whatever state they would have announced.
    case reconnected
}
