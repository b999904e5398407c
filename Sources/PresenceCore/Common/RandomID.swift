/// Random 128-bit identifiers as 32 lowercase hex digits: the unique members of the limiters' sorted sets and message
/// ids. Built directly, without Foundation's `UUID().uuidString`, whose formatting goes through `sprintf` (about 24,000
/// instructions per presence switch, 3 % of it, by `bench/run switch-instructions`).
public enum RandomID {
    /// A new identifier.
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        let high: UInt64 = generator.next()
        let low: UInt64 = generator.next()
        return String(unsafeUninitializedCapacity: 32) { buffer in
            for index in 0..<32 {
                let word = index < 16 ? high : low
                let nibble = UInt8(truncatingIfNeeded: word >> UInt64(60 - 4 * (index % 16))) & 0x0F
                buffer[index] = nibble < 10 ? 0x30 + nibble : 0x57 + nibble
            }
            return 32
        }
    }
}
