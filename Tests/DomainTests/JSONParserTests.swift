import Domain
import Testing

@Suite struct JSONParserTests {
    private func parse(_ text: String) throws -> JSON {
        try JSONParser.parse(text)
    }

    @Test func parsesEveryKindOfValue() throws {
        let value = try parse(#" { "a" : 1, "b":[true, false, null], "c":"x\"y", "d":-1.5e3, "e":{}, "f":[] } "#)
        #expect(value == .object([
            "a": .int(1),
            "b": .array([.bool(true), .bool(false), .null]),
            "c": .string("x\"y"),
            "d": .double(-1500),
            "e": .object([:]),
            "f": .array([]),
        ]))
    }

    @Test func parsesScalarsAtTopLevel() throws {
        #expect(try parse("0") == .int(0))
        #expect(try parse("-0") == .int(0))
        #expect(try parse("\"\"") == .string(""))
        #expect(try parse("true") == .bool(true))
        #expect(try parse("null") == .null)
        #expect(try parse("0.25") == .double(0.25))
        #expect(try parse("1E2") == .double(100))
    }

    @Test func decodesEscapes() throws {
        #expect(try parse(#""\/\b\f\n\r\t\"\\""#) == .string("/\u{08}\u{0C}\n\r\t\"\\"))
        #expect(try parse(#""\u00e9\u00E9""#) == .string("éé"))
        #expect(try parse(#""\uD83D\uDE00""#) == .string("😀"))
    }

    @Test func acceptsValidMultiByteUTF8() throws {
        #expect(try parse("\"é中😀\"") == .string("é中😀"))
    }

    @Test func nulThroughEscapeIsKept() throws {
        let value = try parse(#""a\u0000b""#)
        guard case .string(let text) = value else {
            Issue.record("expected a string, got \(value)")
            return
        }
        #expect(Array(text.unicodeScalars.map(\.value)) == [0x61, 0, 0x62])
    }

    @Test(arguments: [
        "", "   ", "{", "[", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":1,", "[1,", "[1", "\"abc",
        "\"\\u12", "\"\\", "tru", "nul", "-", "1.", "1e", "1e+",
    ])
    func refusesTruncatedDocuments(_ text: String) {
        #expect(throws: JSONParseError.self) { try parse(text) }
    }

    @Test(arguments: [
        "{} x", "1 2", "{}}", "[]]", "\"a\"\"b\"", "null,", "{\"a\":1} {}", "01", "-01", "1.5.2",
    ])
    func refusesTrailingGarbage(_ text: String) {
        #expect(throws: JSONParseError.self) { try parse(text) }
    }

    @Test(arguments: [
        "[1,]", "{\"a\":1,}", "{a:1}", "{'a':1}", "['a']", "True", "NULL", "+1", ".5", "NaN", "Infinity",
        "{\"a\" 1}", "[1 2]", "\"\\x\"", "\"\\u00g0\"", "{1:2}",
    ])
    func refusesInvalidSyntax(_ text: String) {
        #expect(throws: JSONParseError.self) { try parse(text) }
    }

    @Test(arguments: [
        [0x22, 0xFF, 0x22],                    // never valid in UTF-8
        [0x22, 0xC3, 0x28, 0x22],              // lead byte without its continuation
        [0x22, 0x80, 0x22],                    // stray continuation byte
        [0x22, 0xE2, 0x82, 0x22],              // three-byte sequence cut short
        [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22],  // beyond U+10FFFF
        [0x22, 0xE2, 0x82],                    // cut at the end of input
    ] as [[UInt8]])
    func refusesNonUTF8(_ bytes: [UInt8]) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
    }

    @Test(arguments: [
        [0x22, 0xC0, 0xAF, 0x22],              // overlong "/"
        [0x22, 0xC1, 0xBF, 0x22],              // overlong U+007F
        [0x22, 0xE0, 0x80, 0xAF, 0x22],        // overlong "/" in three bytes
        [0x22, 0xE0, 0x9F, 0xBF, 0x22],        // overlong U+07FF
        [0x22, 0xF0, 0x80, 0x80, 0xAF, 0x22],  // overlong "/" in four bytes
        [0x22, 0xF0, 0x8F, 0xBF, 0xBF, 0x22],  // overlong U+FFFF
    ] as [[UInt8]])
    func refusesOverlongUTF8(_ bytes: [UInt8]) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
    }

    @Test func refusesSurrogatesEncodedInUTF8() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xED, 0xA0, 0x80, 0x22] as [UInt8]) }
    }

    @Test(arguments: [
        #""\uD800""#, #""\uDBFF""#, #""\uDC00""#, #""\uDFFF""#, #""\uD800x""#, #""\uD800\u0041""#,
        #""\uD800\uD800""#, #""\uDE00\uD83D""#, #""\uD800\n""#,
    ])
    func refusesLoneSurrogates(_ text: String) {
        #expect(throws: JSONParseError.self) { try parse(text) }
    }

    @Test(arguments: [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F] as [UInt8])
    func refusesRawControlCharactersInStrings(_ byte: UInt8) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0x61, byte, 0x62, 0x22]) }
    }

    @Test func allowsNestingUpToTheLimitAndRefusesDeeper() throws {
        let limit = JSONParser.maxDepth
        #expect(limit == 64)
        let arrays = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
        #expect(throws: Never.self) { try parse(arrays) }
        let tooDeep = String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)
        #expect(throws: JSONParseError.self) { try parse(tooDeep) }

        let objects = String(repeating: "{\"a\":", count: limit) + "1" + String(repeating: "}", count: limit)
        #expect(throws: Never.self) { try parse(objects) }
        let deeperObjects = String(repeating: "{\"a\":", count: limit + 1) + "1" + String(repeating: "}", count: limit + 1)
        #expect(throws: JSONParseError.self) { try parse(deeperObjects) }
    }

    @Test func hugeNestingFailsWithoutCrashing() {
        let text = String(repeating: "[", count: 100_000)
        #expect(throws: JSONParseError.self) { try parse(text) }
    }

    @Test func integersWithinInt64StayIntegers() throws {
        #expect(try parse("9223372036854775807") == .int(.max))
        #expect(try parse("-9223372036854775808") == .int(.min))
    }

    @Test func integersBeyondInt64BecomeDoubles() throws {
        #expect(try parse("9223372036854775808") == .double(9.223372036854775808e18))
        #expect(try parse("-9223372036854775809") == .double(Double("-9223372036854775809")!))
        let huge = try parse("123456789012345678901234567890")
        guard case .double = huge else {
            Issue.record("expected .double, got \(huge)")
            return
        }
    }

    @Test func reportsTheOffsetOfAnError() {
        do {
            _ = try JSONParser.parse("[1, x]")
            Issue.record("expected an error")
        } catch {
            #expect(error.offset == 4)
            #expect(error.description.contains("byte 4"))
        }
    }
}
