import CHiredis
import NIOCore

/// Where hiredis' reader puts the replies it parses, instead of a `redisReply` tree: hiredis' reply object functions
/// (`redisReaderCreateWithFunctions`) call in here for every element as the bytes arrive, and the elements are kept
/// flat, in the order RESP streams them (an array before its elements), with every string's bytes in one buffer
/// per reply. A reply of 100,000 elements costs a few buffer growths instead of two `malloc`s per element in hiredis
/// and a buffer per string here; its strings are slices of the one buffer.
///
/// Not thread-safe: it belongs to one ``RESPReader``.
final class RESPReplyBuilder {
    private struct Element {
        var type: Int32
        /// Strings: where their bytes start in ``arena``. Integers: the value. Arrays: the element count.
        var value: Int64
        /// Strings: their length.
        var length: Int
    }

    // Touched for every element of every reply, only from this reader's event loop and never re-entrantly: the
    // dynamic exclusivity checks on them were about 15 % of the full user list's worker time (perf), so none are made.
    @exclusivity(unchecked) private var elements: [Element] = []
    /// Every string of the reply being read, back to back; a fresh one per reply (the last reply's slices keep theirs).
    @exclusivity(unchecked) private var arena: ByteBuffer?
    private let allocator: ByteBufferAllocator

    init(allocator: ByteBufferAllocator) {
        self.allocator = allocator
    }

    /// The reply read so far, complete: turned into a ``RESPValue``, and the builder ready for the next one.
    func take() -> RESPValue {
        var index = 0
        let value = elements.isEmpty ? RESPValue.null : build(&index)
        // A huge reply's element list is not kept for the life of the connection.
        if elements.capacity > 4096 { elements = [] } else { elements.removeAll(keepingCapacity: true) }
        arena = nil
        return value
    }

    private func build(_ index: inout Int) -> RESPValue {
        let element = elements[index]
        index += 1
        switch element.type {
        case REDIS_REPLY_STRING:
            guard element.length > 0, let arena else { return .bulkString(ByteBuffer()) }
            return .bulkString(arena.getSlice(at: Int(element.value), length: element.length)!)
        case REDIS_REPLY_STATUS:
            return .simpleString(text(element))
        case REDIS_REPLY_ERROR:
            return .error(text(element))
        case REDIS_REPLY_INTEGER:
            return .integer(element.value)
        case REDIS_REPLY_ARRAY:
            var values: [RESPValue] = []
            values.reserveCapacity(Int(element.value))
            for _ in 0..<element.value { values.append(build(&index)) }
            return .array(values)
        default:
            return .null
        }
    }

    private func text(_ element: Element) -> String {
        guard element.length > 0, let arena else { return "" }
        return arena.getString(at: Int(element.value), length: element.length) ?? ""
    }

    /// Appends one element; returns the token hiredis keeps for it (never NULL: NULL would mean out of memory).
    private func append(_ element: Element) -> UnsafeMutableRawPointer? {
        elements.append(element)
        return UnsafeMutableRawPointer(bitPattern: elements.count)
    }

    private func appendString(type: Int32, _ bytes: UnsafeMutablePointer<CChar>?, _ length: Int) -> UnsafeMutableRawPointer? {
        var start = 0
        if length > 0, let bytes {
            if arena == nil { arena = allocator.buffer(capacity: max(length, 256)) }
            start = arena!.writerIndex
            arena!.writeBytes(UnsafeRawBufferPointer(start: bytes, count: length))
        }
        return append(Element(type: type, value: Int64(start), length: length))
    }

    private static func builder(_ task: UnsafePointer<redisReadTask>?) -> RESPReplyBuilder {
        Unmanaged<RESPReplyBuilder>.fromOpaque(chiredis_task_privdata(task)!).takeUnretainedValue()
    }

    /// The function table every reader of this module is created with (hiredis keeps the pointer).
    nonisolated(unsafe) static let functions: UnsafeMutablePointer<redisReplyObjectFunctions> = {
        let functions = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
        functions.initialize(to: redisReplyObjectFunctions(
            createString: { task, bytes, length in
                builder(task).appendString(type: task!.pointee.type, bytes, length)
            },
            createArray: { task, count in
                builder(task).append(Element(type: REDIS_REPLY_ARRAY, value: Int64(max(count, 0)), length: 0))
            },
            createInteger: { task, value in
                builder(task).append(Element(type: REDIS_REPLY_INTEGER, value: Int64(value), length: 0))
            },
            createNil: { task in
                builder(task).append(Element(type: REDIS_REPLY_NIL, value: 0, length: 0))
            },
            // Elements are tokens, not allocations: nothing to free. A reply abandoned half-read (a protocol error)
            // ends the connection, and its reader and builder with it.
            freeObject: { _ in }
        ))
        return functions
    }()
}
