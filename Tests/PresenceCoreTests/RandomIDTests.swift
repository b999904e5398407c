import PresenceCore
import Testing

@Suite("Random identifiers")
struct RandomIDTests {
    @Test func areThirtyTwoLowercaseHexDigitsAndDoNotRepeat() {
        let ids = (0..<2000).map { _ in RandomID.make() }
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(id.utf8.count == 32 && id.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }, "\(id)")
        }
        // Every digit position takes every value: no nibble is stuck (a shift or mask error would pin one).
        for position in 0..<32 {
            let digits = Set(ids.map { Array($0.utf8)[position] })
            #expect(digits.count == 16, "position \(position): \(digits.count) distinct digits")
        }
    }
}
