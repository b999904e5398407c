import NIOCore
import NIOWebSocket

/// A server text frame serialized once, WebSocket header and payload in one buffer (server frames are unmasked): a
/// broadcast's bytes, written as they are to every socket of the channel on this worker (the buffer is shared, never
/// copied or re-framed per socket).
package struct OutboundFrame: Sendable {
    /// The whole frame: header, then the payload.
    package let bytes: ByteBuffer
    /// How many of ``bytes`` are the header.
    let headerLength: Int

    /// `text` framed as a final text frame.
    package init(text: String) {
        let length = text.utf8.count
        let headerLength = length < 126 ? 2 : length <= Int(UInt16.max) ? 4 : 10
        var buffer = Self.allocator.buffer(capacity: headerLength + length)
        buffer.writeInteger(UInt8(0x81))  // FIN, text
        switch headerLength {
        case 2:
            buffer.writeInteger(UInt8(length))
        case 4:
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length))
        default:
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length))
        }
        buffer.writeString(text)
        self.bytes = buffer
        self.headerLength = headerLength
    }

    /// The frame as NIO's type (its payload a slice of ``bytes``), for a pipeline without NIO's frame encoder.
    var frame: WebSocketFrame {
        WebSocketFrame(fin: true, opcode: .text, data: bytes.getSlice(at: bytes.readerIndex + headerLength, length: bytes.readableBytes - headerLength)!)
    }

    private static let allocator = ByteBufferAllocator()
}
