import PresenceCore
import NIOCore
import NIOWebSocket

/// Checks every client frame as it comes, right after NIO's frame decoder and before fragments are joined (RFC 6455;
/// the cases of docs/websocket-conformance.md). NIO's decoder refuses frames over 64 KiB (1009) and fragmented or
/// over-125-byte control frames (1002); this refuses, through `errorCaught` (``PusherChannelHandler`` closes with the
/// code):
/// - a frame the client did not mask (§5.1): 1002;
/// - a reserved bit set (§5.2; no extension is ever negotiated): 1002;
/// - a reserved opcode, 3–7 or 11–15 (§5.2): 1002;
/// - text that is not UTF-8 (§8.1): 1007, at the first fragment that makes the message invalid, not only once the
///   message is whole, and at the last fragment if it ends inside a character.
///
/// After a refusal only close frames (the client's answer to ours) go on; after a close frame nothing does (§5.5.1:
/// data after a close is not read). Fragment order (a continuation with nothing to continue, a new message before the
/// last one ended) is ``NIOWebSocketFrameAggregator``'s check, after this one.
package final class WebSocketMaskCheck: ChannelInboundHandler, RemovableChannelHandler {
    package init() {}

    package typealias InboundIn = WebSocketFrame
    package typealias InboundOut = WebSocketFrame

    /// Raised (through `errorCaught`) for a frame that breaks the protocol; ``PusherChannelHandler`` closes with `code`.
    struct Refusal: Error, Equatable {
        var code: WebSocketErrorCode
        var reason: String

        static let unmasked = Refusal(code: .protocolError, reason: "Unmasked frame")
        static let reservedBits = Refusal(code: .protocolError, reason: "Reserved bits set")
        static let reservedOpcode = Refusal(code: .protocolError, reason: "Reserved opcode")
        static let invalidUTF8 = Refusal(code: .dataInconsistentWithMessage, reason: "Invalid UTF-8")
    }

    /// The data message whose fragments are arriving, if any.
    private enum Message {
        case none
        case text(UTF8Validator)
        case binary
    }

    private var message = Message.none
    private var refused = false
    private var closeSeen = false

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closeSeen else { return }
        let frame = unwrapInboundIn(data)
        if refused {
            // Only the client's answer to our close frame still matters.
            if frame.opcode == .connectionClose {
                closeSeen = true
                context.fireChannelRead(data)
            }
            return
        }
        if let refusal = check(frame) {
            refused = true
            message = .none
            context.fireErrorCaught(refusal)
            return
        }
        if frame.opcode == .connectionClose { closeSeen = true }
        context.fireChannelRead(data)
    }

    /// What is wrong with `frame`, if anything; follows the fragments of text messages.
    private func check(_ frame: WebSocketFrame) -> Refusal? {
        guard let maskKey = frame.maskKey else { return .unmasked }
        if frame.rsv1 || frame.rsv2 || frame.rsv3 { return .reservedBits }
        switch frame.opcode {
        case .connectionClose, .ping, .pong:
            return nil
        case .text:
            // A new message while one is unfinished is the aggregator's to refuse (1002).
            guard case .none = message else { return nil }
            var validator = UTF8Validator()
            guard validator.feed(frame.data, maskKey: maskKey), !frame.fin || validator.isComplete else { return .invalidUTF8 }
            if !frame.fin { message = .text(validator) }
            return nil
        case .binary:
            guard case .none = message else { return nil }
            if !frame.fin { message = .binary }
            return nil
        case .continuation:
            switch message {
            case .none:
                return nil  // nothing to continue: the aggregator refuses it (1002)
            case .binary:
                if frame.fin { message = .none }
                return nil
            case .text(var validator):
                guard validator.feed(frame.data, maskKey: maskKey), !frame.fin || validator.isComplete else {
                    return .invalidUTF8
                }
                message = frame.fin ? .none : .text(validator)
                return nil
            }
        default:
            return .reservedOpcode
        }
    }
}

/// An incremental UTF-8 check (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF), fed one fragment
/// at a time so that a message is refused at the byte that makes it invalid.
package struct UTF8Validator {
    /// Continuation bytes still expected for the current character.
    private var pending = 0
    /// The range the next continuation byte must fall in (narrower right after E0, ED, F0 and F4).
    private var low: UInt8 = 0x80
    private var high: UInt8 = 0xBF

    /// `true` when the bytes so far end on a character boundary.
    var isComplete: Bool { pending == 0 }

    /// Feeds masked frame data (unmasking as it reads, without a copy); `false` at the first invalid byte.
    mutating func feed(_ data: ByteBuffer, maskKey: WebSocketMaskingKey?) -> Bool {
        data.withUnsafeReadableBytes { bytes in
            guard let maskKey else {
                for byte in bytes where !feed(byte) { return false }
                return true
            }
            for (index, byte) in bytes.enumerated() where !feed(byte ^ maskKey[index & 3]) { return false }
            return true
        }
    }

    /// Feeds one byte; `false` if it cannot follow the bytes before it.
    mutating func feed(_ byte: UInt8) -> Bool {
        if pending > 0 {
            guard byte >= low && byte <= high else { return false }
            low = 0x80
            high = 0xBF
            pending -= 1
            return true
        }
        switch byte {
        case 0x00...0x7F: return true
        case 0xC2...0xDF: pending = 1
        case 0xE0: pending = 2; low = 0xA0  // below: overlong
        case 0xE1...0xEC, 0xEE...0xEF: pending = 2
        case 0xED: pending = 2; high = 0x9F  // above: UTF-16 surrogates
        case 0xF0: pending = 3; low = 0x90  // below: overlong
        case 0xF1...0xF3: pending = 3
        case 0xF4: pending = 3; high = 0x8F  // above: past U+10FFFF
        default: return false  // continuation bytes, C0, C1 (overlong) and F5–FF
        }
        return true
    }
}
