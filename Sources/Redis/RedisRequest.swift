import NIOCore

/// Commands on their way to Redis: the encoded bytes, how many replies they produce, where those replies go,
/// and until when the caller is willing to wait.
struct RedisRequest: Sendable {
    enum Responder: Sendable {
        case single(EventLoopPromise<RESPValue>)
        case batch(EventLoopPromise<[RESPValue]>)
        /// No reply is matched to this request (pub/sub commands, confirmed by pushes).
        case none

        /// Completes a request with its one reply.
        func succeed(_ reply: RESPValue) {
            switch self {
            case .single(let p): p.succeed(reply)
            case .batch(let p): p.succeed([reply])
            case .none: break
            }
        }

        /// Completes a request with all its replies, in order.
        func succeed(_ replies: [RESPValue]) {
            switch self {
            case .single(let p): p.succeed(replies[0])
            case .batch(let p): p.succeed(replies)
            case .none: break
            }
        }

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
