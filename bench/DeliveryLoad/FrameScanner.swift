/// Finds an event's `seq` and `t` in a frame's bytes without decoding JSON: a scan for `"seq` and `"t` followed by
/// an optional backslash, a quote, optional spaces and a colon, then digits. So both the plain form nchan delivers
/// (`{"seq":5,"t":1700…}`) and the escaped one inside Pusher's string `data` (`{\"seq\":5,\"t\":1700…}`) read the same.
enum FrameScanner {
    /// One event's numbers.
    struct Event: Equatable {
        var seq: Int
        var t: Int64
    }

    /// `seq` and `t` from a frame, or nil when the frame carries no `seq` (a control frame) or no `t`.
    static func event(in bytes: UnsafeRawBufferPointer) -> Event? {
        guard let seqEnd = keyEnd(in: bytes, from: 0, key: seqKey), let seq = digits(in: bytes, at: seqEnd),
              let tEnd = keyEnd(in: bytes, from: 0, key: tKey), let t = digits(in: bytes, at: tEnd)
        else { return nil }
        return Event(seq: Int(seq.value), t: t.value)
    }

    /// Whether `needle` occurs in `bytes` (for the rare control frames).
    static func contains(_ bytes: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        guard needle.count <= bytes.count, let first = needle.first else { return false }
        var i = 0
        let last = bytes.count - needle.count
        while i <= last {
            if bytes[i] == first {
                var j = 1
                while j < needle.count && bytes[i + j] == needle[j] { j += 1 }
                if j == needle.count { return true }
            }
            i += 1
        }
        return false
    }

    private static let seqKey: [UInt8] = Array("\"seq".utf8)
    private static let tKey: [UInt8] = Array("\"t".utf8)
    private static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\"), colon = UInt8(ascii: ":")
    private static let space = UInt8(ascii: " ")

    /// The index just after the colon that ends key `key` (`"key":` or `"key\":`), searching from `start`.
    private static func keyEnd(in bytes: UnsafeRawBufferPointer, from start: Int, key: [UInt8]) -> Int? {
        let count = bytes.count
        var i = start
        while i + key.count < count {
            if bytes[i] == quote {
                var j = 1
                while j < key.count && bytes[i + j] == key[j] { j += 1 }
                if j == key.count {
                    var k = i + j
                    if k < count && bytes[k] == backslash { k += 1 }
                    if k < count && bytes[k] == quote {
                        k += 1
                        while k < count && bytes[k] == space { k += 1 }
                        if k < count && bytes[k] == colon { return k + 1 }
                    }
                }
            }
            i += 1
        }
        return nil
    }

    /// The unsigned decimal number at `index` (spaces skipped), or nil when there are no digits there.
    private static func digits(in bytes: UnsafeRawBufferPointer, at index: Int) -> (value: Int64, end: Int)? {
        var i = index
        while i < bytes.count && bytes[i] == space { i += 1 }
        var value: Int64 = 0
        let start = i
        while i < bytes.count, bytes[i] &- 48 < 10, i - start < 19 {
            value = value &* 10 &+ Int64(bytes[i] &- 48)
            i += 1
        }
        return i == start ? nil : (value, i)
    }
}
