import Domain
import Testing

@Suite struct JSONFieldsTests {
    private func fields(_ text: String) throws -> JSONFields {
        try JSONFields(parsing: Array(text.utf8))
    }

    @Test func refusesBodiesThatAreNotObjects() {
        #expect(throws: ValidationError("request body must be a JSON object")) { try fields("") }
        #expect(throws: ValidationError("expected a JSON object, got array")) { try fields("[]") }
        #expect(throws: ValidationError("expected a JSON object, got string")) { try fields("\"x\"") }
        #expect(throws: ValidationError("expected a JSON object, got null")) { try fields("null") }
        #expect(throws: ValidationError.self) { try fields("{") }
        #expect(throws: ValidationError.self) { try JSONFields(parsing: [0x7B, 0xFF, 0x7D] as [UInt8]) }
    }

    @Test func malformedJSONMessageNamesTheProblem() {
        #expect(throws: ValidationError("malformed JSON: unexpected data after the value")) { try fields("{} x") }
    }

    @Test func intRefusesNumbersBeyondInt64WithA400StyleMessage() throws {
        let body = try fields(#"{"id": 9223372036854775808, "neg": -9223372036854775809}"#)
        #expect(throws: ValidationError("id must be an integer within 64 bits")) { try body.int("id") }
        #expect(throws: ValidationError("neg must be an integer within 64 bits")) { try body.optionalInt("neg") }
        #expect(throws: ValidationError("id must be an integer within 64 bits")) { try body.id("id") }
    }

    @Test func intRefusesFractionsAndOtherTypes() throws {
        let body = try fields(#"{"a": 1.5, "b": "1", "c": true, "d": null}"#)
        #expect(throws: ValidationError("a must be an integer within 64 bits")) { try body.int("a") }
        #expect(throws: ValidationError("b must be an integer, got string")) { try body.int("b") }
        #expect(throws: ValidationError("c must be an integer, got boolean")) { try body.int("c") }
        #expect(throws: ValidationError("d is required")) { try body.int("d") }
        #expect(throws: ValidationError("e is required")) { try body.int("e") }
        #expect(try body.optionalInt("d") == nil)
        #expect(try body.optionalInt("e") == nil)
    }

    @Test func idMustBePositive() throws {
        let body = try fields(#"{"zero": 0, "neg": -3, "ok": 7}"#)
        #expect(throws: ValidationError("zero must be a positive integer")) { try body.id("zero") }
        #expect(throws: ValidationError("neg must be a positive integer")) { try body.id("neg") }
        #expect(try body.id("ok") == 7)
    }

    @Test func strings() throws {
        let body = try fields(#"{"s": "hi", "n": 3, "z": null}"#)
        #expect(try body.string("s") == "hi")
        #expect(throws: ValidationError("n must be a string, got number")) { try body.string("n") }
        #expect(throws: ValidationError("z is required")) { try body.string("z") }
        #expect(try body.optionalString("z") == nil)
        #expect(body.contains("s"))
        #expect(!body.contains("z"))
        #expect(!body.contains("missing"))
    }

    @Test func arrays() throws {
        let body = try fields(#"{"a": [1, "x"], "o": {}}"#)
        #expect(try body.optionalArray("a") == [.int(1), .string("x")])
        #expect(throws: ValidationError("o must be an array, got object")) { try body.optionalArray("o") }
        #expect(try body.optionalArray("missing") == nil)
    }
}
