import CHiredis
import NIOCore

/// Incremental RESP2 parser over hiredis' `redisReader`.
///
/// Bytes are fed as they arrive, in pieces of any size; each complete reply is turned into a
/// ``RESPValue`` at once and the hiredis object freed, so no C pointer ever leaves this type.
/// Not thread-safe: one reader belongs to one connection on one event loop.
public final class RESPReader {
    private let reader: UnsafeMutablePointer<redisReader>
    private let allocator: ByteBufferAllocator

    /// Creates an empty reader.
    public init(allocator: ByteBufferAllocator = .init()) {
        guard let reader = redisReaderCreate() else {
            fatalError("hiredis could not allocate a reader (out of memory)")
        }
        self.reader = reader
        self.allocator = allocator
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Hands bytes to the parser. Throws ``RedisError/protocolError(_:)`` once the stream is corrupt.
    public func feed(_ buffer: ByteBuffer) throws(RedisError) {
        let status = buffer.withUnsafeReadableBytes { raw -> Int32 in
            guard let base = raw.baseAddress, raw.count > 0 else { return REDIS_OK }
            return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), raw.count)
        }
        if status != REDIS_OK { throw protocolError() }
    }

    /// Hands raw bytes to the parser.
    public func feed(_ bytes: some Collection<UInt8>) throws(RedisError) {
        var buffer = allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        try feed(buffer)
    }

    /// The next complete reply, or `nil` when more bytes are needed.
    public func next() throws(RedisError) -> RESPValue? {
        var raw: UnsafeMutableRawPointer? = nil
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else { throw protocolError() }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    private func protocolError() -> RedisError {
        let message = chiredis_reader_error(reader).map { String(cString: $0) } ?? "unknown reader error"
        return .protocolError(message)
    }

    private func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            var buffer = allocator.buffer(capacity: r.len)
            if r.len > 0, let str = r.str {
                buffer.writeBytes(UnsafeRawBufferPointer(start: str, count: r.len))
            }
            return .bulkString(buffer)
        case REDIS_REPLY_STATUS:
            return .simpleString(text(r))
        case REDIS_REPLY_ERROR:
            return .error(text(r))
        case REDIS_REPLY_INTEGER:
            return .integer(r.integer)
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(r.elements)
            for i in 0..<r.elements {
                if let element = r.element[i] { elements.append(convert(element)) } else { elements.append(.null) }
            }
            return .array(elements)
        default:
            return .error("unsupported reply type \(r.type)")
        }
    }

    private func text(_ r: redisReply) -> String {
        guard r.len > 0, let str = r.str else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: str, count: r.len), as: UTF8.self)
    }
}
