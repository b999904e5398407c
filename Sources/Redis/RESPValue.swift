import NIOCore

/// One RESP2 reply, decoded by hiredis and copied into Swift memory.
///
/// hiredis maps both the nil bulk string (`$-1`) and the nil array (`*-1`) to the same nil reply,
/// so both arrive here as ``null``.
public enum RESPValue: Sendable, Hashable {
    /// A simple string (`+OK`).
    case simpleString(String)
    /// An error reply (`-ERR ...`), with Redis's message.
    case error(String)
    /// An integer reply (`:42`).
    case integer(Int64)
    /// A bulk string (`$3\r\nfoo`): binary-safe bytes.
    case bulkString(ByteBuffer)
    /// A nil bulk string or nil array.
    case null
    /// An array reply, possibly nested.
    case array([RESPValue])
}

extension RESPValue {
    /// The reply as text: simple strings, bulk strings (as UTF-8) and integers; `nil` otherwise.
    public var string: String? {
        switch self {
        case .simpleString(let s): return s
        case .bulkString(let b): return String(buffer: b)
        case .integer(let i): return String(i)
        default: return nil
        }
    }

    /// The reply as an integer: integer replies and numeric strings; `nil` otherwise.
    public var int: Int? {
        switch self {
        case .integer(let i): return Int(i)
        case .bulkString, .simpleString: return string.flatMap { Int($0) }
        default: return nil
        }
    }

    /// A bulk string of ASCII digits (an optional `-`, then up to 18 digits) as an integer, read from its bytes
    /// without making a `String`; also integer replies. `nil` otherwise (a score such as `1.5e+20` included).
    public var int64: Int64? {
        switch self {
        case .integer(let i): return i
        case .bulkString(let b):
            let view = b.readableBytesView
            guard !view.isEmpty, view.count <= 19 else { return nil }
            var value: Int64 = 0
            var negative = false
            for (offset, byte) in view.enumerated() {
                if offset == 0, byte == UInt8(ascii: "-"), view.count > 1 {
                    negative = true
                    continue
                }
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            return negative ? -value : value
        default: return nil
        }
    }

    /// The reply as bytes: bulk and simple strings; `nil` otherwise.
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let b): return Array(b.readableBytesView)
        case .simpleString(let s): return Array(s.utf8)
        default: return nil
        }
    }

    /// The elements of an array reply; `nil` for anything else.
    public var array: [RESPValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// `true` for the nil reply.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The error message of an error reply; `nil` otherwise.
    public var errorMessage: String? {
        if case .error(let m) = self { return m }
        return nil
    }
}

extension RESPValue: CustomStringConvertible {
    public var description: String {
        switch self {
        case .simpleString(let s): return "+\(s)"
        case .error(let e): return "-\(e)"
        case .integer(let i): return ":\(i)"
        case .bulkString(let b): return "\"\(String(decoding: b.readableBytesView, as: UTF8.self))\""
        case .null: return "(nil)"
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        }
    }
}
