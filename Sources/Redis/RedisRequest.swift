import NIOCore

/// Commands on their way to Redis: the encoded bytes, how many replies they produce, where those replies go,
/// and until when the caller is willing to wait.
struct RedisRequest: Sendable {
    enum Responder: Sendable {
        case single(EventLoopPromise<RESPValue>)
        case batch(EventLoopPromise<[RESPValue]>)
        /// No reply is matched to this request (pub/sub commands, confirmed by pushes).
        case none

        func fail(_ error: RedisError) {
            switch self {
            case .single(let p): p.fail(error)
            case .batch(let p): p.fail(error)
            case .none: break
            }
        }
    }

    var payload: ByteBuffer
    var replyCount: Int
    var deadline: NIODeadline
    var responder: Responder
}
