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
        #expect(JSONValue.parse(Array("{x".utf8)) == Optional<JSONValue>.none)
    }
}

@Suite("JSON parser")
struct JSONParserTests {
    /// Valid documents: our parser and Foundation's agree on every one.
    @Test(arguments: [
        #"{}"#, #"[]"#, #"  {"a" : [1, -2, 3.5e2, 0, -0.25, 1E-3, true, false, null]}  "#,
        #""plain""#, #""esc \" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00 \u0000""#, #""é 😀 中文""#,
        #"{"a":{"b":{"c":[[[]]]}},"a2":"x"}"#, #"12345678901234"#, #"-1.5"#,
    ])
    func agreesWithFoundation(text: String) throws {
        let ours = try #require(JSONParser.parse(Array(text.utf8)))
        let foundation = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(ours == foundation)
    }

    /// Invalid documents are refused.
    @Test(arguments: [
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{a:1}", "{\"a\" 1}", "01", "-", "1.", ".5", "1e", "+1", "tru", "nul",
        "\"unterminated", "\"bad \\x escape\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"ctrl \u{01}\"",
        "\"tab\tinside\"", "1 2", "{} x", "[1 2]", "NaN", "Infinity", "1e999", "\"\\u12\"",
    ])
    func refuses(text: String) {
        #expect(JSONParser.parse(Array(text.utf8)) == Optional<JSONValue>.none)
    }

    @Test func duplicateKeysLastWins() {
        #expect(JSONParser.parse(Array(#"{"dup":1,"dup":2}"#.utf8)) == ["dup": 2])
    }

    @Test func refusesInvalidUTF8() {
        #expect(JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) == Optional<JSONValue>.none)  // "\xC3(" : truncated sequence
        #expect(JSONParser.parse([0x22, 0xFF, 0x22]) == Optional<JSONValue>.none)
        #expect(JSONParser.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) == Optional<JSONValue>.none)  // an encoded surrogate
        #expect(JSONParser.parse([0x22, 0xC3, 0xA9, 0x22]) == .string("é"))
    }

    @Test func limitsNesting() {
        let ok = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
        #expect(JSONParser.parse(Array(ok.utf8)) != Optional<JSONValue>.none)
        let deep = String(repeating: "[", count: JSONParser.maxDepth + 1) + String(repeating: "]", count: JSONParser.maxDepth + 1)
        #expect(JSONParser.parse(Array(deep.utf8)) == Optional<JSONValue>.none)
        let hostile = String(repeating: "{\"a\":", count: 100_000)
        #expect(JSONParser.parse(Array(hostile.utf8)) == Optional<JSONValue>.none)
    }

    @Test func theRoomUserListIsWrittenAsTheValueTreeWouldBe() {
        let users = [
            PresentUser(username: "zed", lastSeen: 3), PresentUser(username: "amy", lastSeen: 1_795_292_571_469),
            PresentUser(username: "a\"b\\c", lastSeen: -1), PresentUser(username: "bob_2", lastSeen: 0),
        ]
        let tree: JSONValue = ["users": .array(users.sorted { $0.username < $1.username }.map {
            ["username": .string($0.username), "lastSeen": .int64($0.lastSeen)]
        })]
        #expect(String(decoding: PresentUser.listJSON(users), as: UTF8.self) == tree.serialized)
        #expect(String(decoding: PresentUser.listJSON([]), as: UTF8.self) == #"{"users":[]}"#)
    }
}
