import NIOCore

/// What a request's context knows of its connection: the channel, weakly (a context must never keep a closed
/// connection alive).
package final class RequestConnection: Sendable {
    weak let channel: (any Channel)?

    init(channel: any Channel) {
        self.channel = channel
    }
}
