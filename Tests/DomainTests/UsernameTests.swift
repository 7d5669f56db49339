import Domain
import Testing

@Suite struct UsernameTests {
    @Test(arguments: ["a", "Z", "alice", "Alice_B.c-d", "a1", "a" + String(repeating: "9", count: 31), "x..", "y--__",
                      "Алиса", "李雷", "josé", "Straße", "alïce", "éa", "नमस्ते", "Zoë٣"])
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
        #expect(throws: ValidationError("username must be at most 32 characters")) {
            try Username.validate(String(repeating: "Я", count: 33))
        }
        // 32 characters of any script are fine.
        #expect(Username.isValid(String(repeating: "Я", count: 32)))
    }

    @Test func combiningPilesAreBoundedInBytes() {
        let zalgo = "a" + String(repeating: "\u{301}\u{302}\u{303}\u{304}", count: 40)
        #expect(throws: ValidationError("username must be at most 128 bytes of UTF-8")) { try Username.validate(zalgo) }
    }

    @Test(arguments: ["1abc", "42", "_abc", ".abc", "-abc", " abc", "😀a", "\u{301}a"])
    func mustStartWithALetter(_ name: String) throws {
        let error = try #require(throws: ValidationError.self) { try Username.validate(name) }
        #expect(error.message.hasPrefix("username must start with a letter (of any script), not "))
        #expect(!Username.isValid(name))
    }

    @Test(arguments: [("al ice", "U+0020"), ("a/b", "'/' (U+002F)"), ("a\u{0}b", "U+0000"), ("a%2e", "'%' (U+0025)"),
                      ("a@b", "'@' (U+0040)"), ("a\nb", "U+000A"), ("a+b", "'+' (U+002B)"), ("a😀", "'😀' (U+1F600)"),
                      ("a\u{200B}b", "U+200B")])
    func refusesOtherCharactersNamingThem(_ name: String, _ named: String) {
        #expect(throws: ValidationError("username may contain only letters, digits, '_', '.' and '-'; \(named) is not allowed")) {
            try Username.validate(name)
        }
    }

    @Test func storedNFC() throws {
        #expect(try Username.validate("jose\u{301}").unicodeScalars.map(\.value) == Array("jos\u{E9}".unicodeScalars).map(\.value))
    }

    @Test func keysFoldCaseTheUnicodeWay() throws {
        #expect(Username.key(for: "Алиса") == Username.key(for: "алиса"))
        #expect(Username.key(for: "Straße") == Username.key(for: "STRASSE"))
        #expect(Username.key(for: "ΣΊΣΥΦΟΣ") == Username.key(for: "σίσυφος"))
        #expect(Username.key(for: try Username.validate("JOSE\u{301}")) == Username.key(for: "josé"))
        #expect(Username.key(for: "Alice") == "alice")  // ASCII names: what migration 005 computed with lower()
        #expect(Username.key(for: "alice") != Username.key(for: "alicé"))
    }
}
