import CHiredis
import NIOCore

/// Turns commands into RESP bytes with hiredis' `redisFormatSdsCommandArgv` (binary-safe, explicit lengths; its
/// headers written by hiredis' own `sdscatfmt`, where `redisFormatCommandArgv` calls `sprintf` for each of them).
public enum RESPEncoder {
    /// Appends the RESP encoding of `command` to `buffer`.
    public static func encode(_ command: RedisCommand, into buffer: inout ByteBuffer) {
        var target: UnsafeMutablePointer<CChar>? = nil
        let length: Int32 = command.bytes.withUnsafeBufferPointer { bytes in
            command.lengths.withUnsafeBufferPointer { lengths in
                bytes.withMemoryRebound(to: CChar.self) { chars in
                    chiredis_format_packed(&target, Int32(command.count), chars.baseAddress, lengths.baseAddress)
                }
            }
        }
        guard length >= 0, let target else {
            // hiredis only fails to format when malloc fails.
            fatalError("hiredis could not format a command (out of memory)")
        }
        defer { redisFreeSdsCommand(target) }
        let raw = UnsafeRawBufferPointer(start: target, count: Int(length))
        buffer.writeBytes(raw)
    }

    /// The RESP encoding of `command` as a new buffer.
    public static func encode(_ command: RedisCommand, allocator: ByteBufferAllocator = .init()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: command.bytes.count + 16 * command.count)
        encode(command, into: &buffer)
        return buffer
    }
}
