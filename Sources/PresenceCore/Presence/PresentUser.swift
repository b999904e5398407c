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
            out.append(contentsOf: String(user.lastSeen).utf8)
            out.append(contentsOf: #","username":"#.utf8)
            JSONValue.writeString(user.username, into: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: "]}".utf8)
        return out
    }
}
