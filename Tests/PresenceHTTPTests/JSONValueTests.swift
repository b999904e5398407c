import Foundation
import PresenceCore
import Testing

@Suite("JSON values")
struct JSONValueTests {
    @Test func serializesCompactSortedAndEscaped() throws {
        let value: JSONValue = [
            "b": [1, .number(2.5), true, nil], "a": "quote \" backslash \\ newline \n tab \t bell \u{07} é 😀 </script>",
            "n": .int64(1_795_292_571_469), "o": [:],
        ]
        let text = value.serialized
        #expect(text.hasPrefix(#"{"a":"quote \" backslash \\ newline \n tab \t bell \u0007 é 😀 </script>","b":[1,2.5,true,null]"#))
        // Round trip through Foundation's parser and ours.
        let parsed = try #require(JSONValue.parse(Array(text.utf8)))
        #expect(parsed == value)
        #expect(try JSONSerialization.jsonObject(with: Data(text.utf8)) is [String: Any])
    }

    @Test func strictTypes() {
        #expect(JSONValue.parse(Array("true".utf8)) == .bool(true))
        #expect(JSONValue.parse(Array("1".utf8))?.bool == nil)
        #expect(JSONValue.parse(Array("{x".utf8)) == nil)
    }
}
