/// Username and room id rules.
public enum Validation {
    /// 3–30 characters, a letter first, then letters or digits, with single `-` or `_` only between letters/digits
    /// (`^[a-z](?:[a-z0-9]|[-_](?=[a-z0-9])){2,29}$`, case-insensitive). Returns the lowercased name, or `nil`.
    public static func username(_ raw: String) -> String? {
        // ASCII before lowercasing: some non-ASCII letters lowercase to ASCII ones (the Kelvin sign to `k`).
        guard raw.utf8.allSatisfy({ $0 < 0x80 }) else { return nil }
        let name = raw.lowercased()
        let bytes = Array(name.utf8)
        guard (3...30).contains(bytes.count), isLetter(bytes[0]) else { return nil }
        for (index, byte) in bytes.enumerated() {
            if isLetter(byte) || isDigit(byte) { continue }
            guard byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_"), index > 0, index + 1 < bytes.count,
                  isLetter(bytes[index + 1]) || isDigit(bytes[index + 1]) else { return nil }
        }
        return name
    }

    /// An id a new chat room may take: a room id that does not start with `ticket_`, the prefix of support rooms
    /// (`ticket_<ticketId>`), so the two kinds never share a room.
    public static func isNewChatRoomID(_ id: String) -> Bool {
        isRoomID(id) && !id.lowercased().hasPrefix("ticket_")
    }

    /// A support room's id (`ticket_...`, any case): chat routes refuse these.
    public static func isSupportRoomID(_ id: String) -> Bool {
        id.utf8.count >= 7 && id.prefix(7).lowercased() == "ticket_"
    }

    /// Text people see as a name (room names and the like): no control characters (NUL, BEL, newlines, DEL, C1)
    /// and no bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C) that would make it
    /// read as something else.
    public static func isDisplaySafe(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { scalar in
            if scalar.properties.generalCategory == .control { return false }
            switch scalar.value {
            case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return false
            default: return true
            }
        }
    }

    /// `^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`.
    public static func isRoomID(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard (1...64).contains(bytes.count), isLetter(lower(bytes[0])) || isDigit(bytes[0]) else { return false }
        return bytes.allSatisfy { isLetter(lower($0)) || isDigit($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    /// `true` when every character may appear in a username (lowercase letters, digits, `-`, `_`).
    public static func isUsernameAlphabet(_ text: String) -> Bool {
        text.utf8.allSatisfy { isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }
    }

    static func isLetter(_ b: UInt8) -> Bool { b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z") }
    static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
    static func lower(_ b: UInt8) -> UInt8 { (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) ? b + 32 : b }
}
