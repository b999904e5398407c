import NIOCore

/// One Redis command: its name and arguments, stored back to back with explicit lengths so any byte
/// (NUL, CR, LF, invalid UTF-8) passes through unchanged.
public struct RedisCommand: Sendable, Hashable {
    /// All argument bytes, one after another (the command name is argument 0).
    public private(set) var bytes: [UInt8]
    /// The length of each argument in ``bytes``.
    public private(set) var lengths: [Int]

    /// Creates a command from its name and nothing else; add arguments with the `append` methods.
    public init(_ name: String) {
        self.bytes = Array(name.utf8)
        self.lengths = [name.utf8.count]
    }

    /// Creates a command from its name and text arguments.
    public init(_ name: String, _ arguments: [String]) {
        self.init(name)
        for argument in arguments { append(argument) }
    }

    /// Creates a command from its name and text arguments.
    public init(_ name: String, _ arguments: String...) {
        self.init(name, arguments)
    }

    /// The number of arguments, command name included.
    public var count: Int { lengths.count }

    /// Appends a text argument (UTF-8).
    public mutating func append(_ argument: String) {
        let before = bytes.count
        bytes.append(contentsOf: argument.utf8)
        lengths.append(bytes.count - before)
    }

    /// Appends an integer argument, in decimal.
    public mutating func append(_ argument: Int) {
        append(String(argument))
    }

    /// Appends a binary argument.
    public mutating func append<Bytes: Collection>(bytes argument: Bytes) where Bytes.Element == UInt8 {
        bytes.append(contentsOf: argument)
        lengths.append(argument.count)
    }

    /// Appends a binary argument held in a `ByteBuffer` (its readable bytes).
    public mutating func append(buffer argument: ByteBuffer) {
        append(bytes: argument.readableBytesView)
    }

    /// The arguments one by one (command name first).
    public var arguments: [ArraySlice<UInt8>] {
        var result: [ArraySlice<UInt8>] = []
        result.reserveCapacity(lengths.count)
        var offset = 0
        for length in lengths {
            result.append(bytes[offset..<(offset + length)])
            offset += length
        }
        return result
    }

    /// The command name, uppercased.
    public var name: String {
        String(decoding: bytes[0..<lengths[0]], as: UTF8.self).uppercased()
    }
}

extension RedisCommand: CustomStringConvertible {
    public var description: String {
        arguments.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
    }
}
