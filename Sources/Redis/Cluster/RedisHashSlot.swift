/// Redis Cluster's key → slot mapping: CRC16 (XMODEM: polynomial 0x1021, initial value 0) of the key, or of its hash
/// tag, modulo 16384.
///
/// The hash tag rule, exactly as Redis defines it: find the first `{`; if a `}` follows it with at least one byte in
/// between, only the bytes between that `{` and the first `}` after it are hashed. Otherwise (no `{`, no `}` after it,
/// or `{}`) the whole key is hashed. So `room:{general}:meta` and `room:{general}:members` share a slot, `a{}{b}` hashes
/// whole, and `{{a}}` hashes `{a`.
public enum RedisHashSlot {
    /// Slots in a cluster.
    public static let count = 16384

    /// The slot of `key` (its UTF-8 bytes).
    public static func slot(for key: String) -> Int {
        var key = key
        return key.withUTF8 { slot(for: $0) }
    }

    /// The slot of a key given as bytes.
    public static func slot(for key: UnsafeBufferPointer<UInt8>) -> Int {
        Int(crc16(hashedPart(of: key)) & UInt16(count - 1))
    }

    /// The bytes that decide the slot: the hash tag when there is a non-empty one, else the whole key.
    static func hashedPart(of key: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")),
              let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")),
              close > open + 1
        else { return key }
        return UnsafeBufferPointer(rebasing: key[(open + 1)..<close])
    }

    /// CRC16/XMODEM, table-driven.
    static func crc16(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}
