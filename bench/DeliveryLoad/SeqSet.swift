/// The seqs one socket has received: a bitset of `0 ..< capacity`.
struct SeqSet {
    private var words: [UInt64]
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        words = [UInt64](repeating: 0, count: (capacity + 63) / 64)
    }

    /// Marks `seq` (which must be below `capacity`); false when it was marked already.
    mutating func insert(_ seq: Int) -> Bool {
        let bit: UInt64 = 1 << UInt64(seq & 63)
        let word = seq >> 6
        if words[word] & bit != 0 { return false }
        words[word] |= bit
        return true
    }
}
