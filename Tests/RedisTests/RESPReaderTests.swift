import NIOCore
import Redis
import Testing

@Suite("RESP decoding through hiredis' reader")
struct RESPReaderTests {
    func decodeAll(_ text: String, chunk: Int? = nil) throws -> [RESPValue] {
        let reader = RESPReader()
        let bytes = Array(text.utf8)
        var replies: [RESPValue] = []
        let size = chunk ?? bytes.count
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + size, bytes.count)
            try reader.feed(bytes[offset..<end])
            while let reply = try reader.next() { replies.append(reply) }
            offset = end
        }
        return replies
    }

    @Test func everyRESP2Type() throws {
        let replies = try decodeAll(
            "+OK\r\n-ERR wrong\r\n:42\r\n:-7\r\n$5\r\nhello\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n"
                + "*3\r\n:1\r\n$1\r\na\r\n*2\r\n+x\r\n*1\r\n$-1\r\n"
        )
        #expect(replies == [
            .simpleString("OK"),
            .error("ERR wrong"),
            .integer(42),
            .integer(-7),
            .bulkString(ByteBuffer(string: "hello")),
            .bulkString(ByteBuffer()),
            .null,
            .null,
            .array([]),
            .array([.integer(1), .bulkString(ByteBuffer(string: "a")), .array([.simpleString("x"), .array([.null])])]),
        ])
    }

    @Test func aReplyKeepsItsBytesWhileLaterRepliesAreRead() throws {
        // Every string of a reply is a slice of one buffer per reply: reading the next reply must not touch it.
        let reader = RESPReader()
        let members = (0..<10_000).map { "member-\($0)" }
        var text = "*\(members.count * 2)\r\n"
        for (index, member) in members.enumerated() { text += "$\(member.utf8.count)\r\n\(member)\r\n:\(index)\r\n" }
        try reader.feed(Array(text.utf8))
        let big = try #require(try reader.next())
        try reader.feed(Array("$3\r\nxyz\r\n*2\r\n$3\r\nabc\r\n+OK\r\n".utf8))
        #expect(try reader.next() == .bulkString(ByteBuffer(string: "xyz")))
        #expect(try reader.next() == .array([.bulkString(ByteBuffer(string: "abc")), .simpleString("OK")]))
        let items = try #require(big.array)
        #expect(items.count == 20_000)
        for (index, member) in members.enumerated() {
            #expect(items[2 * index].string == member && items[2 * index + 1] == .integer(Int64(index)))
        }
        #expect(try reader.next() == nil)
    }

    @Test func replySplitByteByByte() throws {
        let text = "*2\r\n$12\r\nhello\r\nworld\r\n*2\r\n:1\r\n-ERR in array\r\n"
        let whole = try decodeAll(text)
        let split = try decodeAll(text, chunk: 1)
        #expect(split == whole)
        #expect(split == [
            .array([
                .bulkString(ByteBuffer(string: "hello\r\nworld")),
                .array([.integer(1), .error("ERR in array")]),
            ]),
        ])
    }

    @Test func noReplyUntilComplete() throws {
        let reader = RESPReader()
        try reader.feed(Array("$10\r\n01234".utf8))
        #expect(try reader.next() == nil)
        try reader.feed(Array("56789\r\n".utf8))
        #expect(try reader.next() == .bulkString(ByteBuffer(string: "0123456789")))
        #expect(try reader.next() == nil)
    }

    @Test func binaryBulkString() throws {
        let reader = RESPReader()
        let payload: [UInt8] = [0, 13, 10, 255, 254, 0x80, 36]
        try reader.feed(Array("$\(payload.count)\r\n".utf8) + payload + Array("\r\n".utf8))
        #expect(try reader.next()?.bytes == payload)
    }

    @Test func corruptStreamIsAProtocolError() throws {
        let reader = RESPReader()
        try reader.feed(Array("?what\r\n".utf8))
        #expect(throws: RedisError.self) { try reader.next() }
        do {
            _ = try reader.next()
            Issue.record("expected a protocol error")
        } catch {
            guard case .protocolError(let message) = error else {
                Issue.record("expected a protocol error, got \(error)")
                return
            }
            #expect(message.contains("Protocol error"))
        }
    }
}

@Suite("RESP encoding through redisFormatCommandArgv")
struct RESPEncoderTests {
    @Test func exactBytes() {
        var command = RedisCommand("SET", "key")
        command.append(bytes: [0, 13, 10, 255] as [UInt8])
        let encoded = RESPEncoder.encode(command)
        let expected: [UInt8] = Array("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$4\r\n".utf8) + [0, 13, 10, 255] + Array("\r\n".utf8)
        #expect(Array(encoded.readableBytesView) == expected)
    }

    @Test func emptyArgumentsAndManyArguments() {
        var command = RedisCommand("DEL")
        for i in 0..<100 { command.append(i % 2 == 0 ? "" : "k\(i)") }
        let encoded = String(buffer: RESPEncoder.encode(command))
        #expect(encoded.hasPrefix("*101\r\n$3\r\nDEL\r\n$0\r\n\r\n$2\r\nk1\r\n"))
        #expect(command.count == 101)
    }

    @Test func integersAreReadFromBulkBytes() {
        func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }
        #expect(bulk("1733400090000").int64 == 1_733_400_090_000)
        #expect(bulk("-42").int64 == -42)
        #expect(RESPValue.integer(7).int64 == 7)
        for bad in ["", "-", "1.5", "1e+20", "12a", "99999999999999999999"] { #expect(bulk(bad).int64 == nil) }
        #expect(RESPValue.null.int64 == nil)
    }
}
