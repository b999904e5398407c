/// A user present in a room now, and when their presence was last refreshed (its expiry less the TTL).
public struct PresentUser: Sendable, Hashable {
    public var username: String
    /// Epoch ms.
    public var lastSeen: Int64

    public init(username: String, lastSeen: Int64) {
        self.username = username
        self.lastSeen = lastSeen
    }
}

extension PresentUser {
    /// ryOS's room user list, `{"users":[{"lastSeen":…,"username":"…"},…]}`, ordered by user name (byte order: names
    /// are ASCII), written straight into bytes: the same text ``JSONValue`` would give (sorted keys, compact), without a
    /// value tree per user. A room of 50,000 is a 2.4 MB answer, where building and sorting a tree dominated.
    public static func listJSON(_ users: [PresentUser]) -> [UInt8] {
        var sorted = users
        sorted.sort { $0.username.utf8.lexicographicallyPrecedes($1.username.utf8) }
        var out: [UInt8] = []
        out.reserveCapacity(16 + sorted.count * 48)
        out.append(contentsOf: #"{"users":["#.utf8)
        for (index, user) in sorted.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #"{"lastSeen":"#.utf8)
            appendDecimal(user.lastSeen, to: &out)
            out.append(contentsOf: #","username":"#.utf8)
            JSONValue.writeString(user.username, into: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: "]}".utf8)
        return out
    }

    /// `value` in decimal, without making a `String` first.
    static func appendDecimal(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 20 digits at most, reversed, as bytes below
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            for index in stride(from: count - 1, through: 0, by: -1) { out.append(buffer[index]) }
        }
    }
}
