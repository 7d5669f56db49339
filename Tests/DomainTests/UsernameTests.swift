import Domain
import Testing

@Suite struct UsernameTests {
    @Test(arguments: ["a", "Z", "alice", "Alice_B.c-d", "a1", "a" + String(repeating: "9", count: 31), "x..", "y--__"])
    func valid(_ name: String) throws {
        #expect(try Username.validate(name) == name)
        #expect(Username.isValid(name))
    }

    @Test func emptyIsRefused() {
        #expect(throws: ValidationError("username must not be empty")) { try Username.validate("") }
    }

    @Test func longerThan32IsRefused() {
        #expect(throws: ValidationError("username must be at most 32 characters")) {
            try Username.validate("a" + String(repeating: "b", count: 32))
        }
        #expect(throws: ValidationError("username must be at most 32 characters")) {
            try Username.validate(String(repeating: "a", count: 5000))
        }
    }

    @Test(arguments: ["1abc", "42", "_abc", ".abc", "-abc", " abc", "éa"])
    func mustStartWithALetter(_ name: String) {
        #expect(throws: ValidationError("username must start with a letter")) { try Username.validate(name) }
        #expect(!Username.isValid(name))
    }

    @Test(arguments: ["al ice", "alïce", "a/b", "a\u{0}b", "a%2e", "a@b", "a\nb", "a+b", "a😀"])
    func refusesOtherCharacters(_ name: String) {
        #expect(throws: ValidationError("username may contain only letters, digits, '_', '.' and '-'")) {
            try Username.validate(name)
        }
    }

    @Test func nonASCIILettersAreRefused() {
        // 15 two-byte letters fit in 32 bytes but are not ASCII letters.
        #expect(throws: ValidationError("username may contain only letters, digits, '_', '.' and '-'")) {
            try Username.validate("a" + String(repeating: "é", count: 15))
        }
    }
}
