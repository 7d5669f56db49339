import Domain
import Testing

/// What `GET /search?q=` accepts: words, prefixes and phrases, and nothing that FTS5 would
/// read as syntax.
@Suite struct SearchQueryTests {
    private func terms(_ raw: String) throws -> [SearchQuery.Term] {
        try SearchQuery(parsing: raw).terms
    }

    @Test func wordsPrefixesAndPhrases() throws {
        #expect(try terms("hello  world") == [.init(text: "hello", isPrefix: false), .init(text: "world", isPrefix: false)])
        #expect(try terms("hel*") == [.init(text: "hel", isPrefix: true)])
        #expect(try terms("\"see you\" soon") == [.init(text: "see you", isPrefix: false), .init(text: "soon", isPrefix: false)])
        #expect(try terms("\"see yo\"*") == [.init(text: "see yo", isPrefix: true)])
        #expect(try terms("Crème*") == [.init(text: "Crème", isPrefix: true)])
    }

    @Test func operatorsAreText() throws {
        #expect(try terms("a OR b").map(\.text) == ["a", "OR", "b"])
        #expect(try terms("body:x NEAR(y) -z ^w").map(\.text) == ["body:x", "NEAR(y)", "-z", "^w"])
        // Punctuation alone is no term.
        #expect(try terms("hello - !!").map(\.text) == ["hello"])
    }

    @Test func malformedQueriesSayWhy() {
        let cases: [(String, String)] = [
            ("\"unclosed", "unclosed quote"), ("", "at least one word"), ("!!!", "at least one word"),
            ("*", "no word before it"), ("a*", "at least 2"), ("he*llo", "only at the end"),
            ("\"ab\"cd", "space after a closing quote"),
            (String(repeating: "x", count: SearchQuery.maxLength + 1), "at most \(SearchQuery.maxLength)"),
            ((0...SearchQuery.maxTerms).map { "w\($0)" }.joined(separator: " "), "at most \(SearchQuery.maxTerms)"),
        ]
        for (raw, reason) in cases {
            do {
                _ = try SearchQuery(parsing: raw)
                Issue.record("\(raw.prefix(40)) was accepted")
            } catch {
                #expect(error.message.contains(reason), "\(raw.prefix(40)): \(error.message)")
            }
        }
    }

    @Test func aCombiningAccentBelongsToItsLetter() throws {
        // "e" + U+0301 is one letter: "ée*" is a prefix of two letters, not one.
        #expect(try terms("e\u{301}e*") == [.init(text: "e\u{301}e", isPrefix: true)])
    }
}
