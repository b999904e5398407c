import CHiredis
import NIOCore

/// Incremental RESP2 parser over hiredis' `redisReader`.
///
/// Bytes are fed as they arrive, in pieces of any size. hiredis parses them and hands every element to a
/// ``RESPReplyBuilder`` (its reply object functions) rather than allocating a `redisReply` per element; each complete
/// reply comes out as a ``RESPValue``, so no C pointer ever leaves this type.
/// Not thread-safe: one reader belongs to one connection on one event loop.
public final class RESPReader {
    private let reader: UnsafeMutablePointer<redisReader>
    private let allocator: ByteBufferAllocator
    private let builder: RESPReplyBuilder

    /// Creates an empty reader.
    public init(allocator: ByteBufferAllocator = .init()) {
        guard let reader = redisReaderCreateWithFunctions(RESPReplyBuilder.functions) else {
            fatalError("hiredis could not allocate a reader (out of memory)")
        }
        self.reader = reader
        self.allocator = allocator
        self.builder = RESPReplyBuilder(allocator: allocator)
        reader.pointee.privdata = Unmanaged.passUnretained(builder).toOpaque()
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
        guard raw != nil else { return nil }
        return builder.take()
    }

    private func protocolError() -> RedisError {
        let message = chiredis_reader_error(reader).map { String(cString: $0) } ?? "unknown reader error"
        return .protocolError(message)
    }
}
