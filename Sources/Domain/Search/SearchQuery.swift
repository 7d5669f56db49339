/// What a user may type into `GET /search?q=`, parsed into terms before anything reaches the
/// database.
///
/// The syntax is deliberately small: words, prefixes (`hel*`), and phrases in double quotes
/// (`"see you"`, `"see yo"*`), every term required (AND). Nothing else is an operator:
/// `OR`, `NOT`, `NEAR`, `col:`, `^`, `+`, `-` and parentheses are ordinary text, which the
/// index splits into words like any other punctuation. The storage layer builds its match
/// expression from these terms and never passes the user's text through as syntax.
public struct SearchQuery: Sendable, Equatable {
    public static let maxLength = 256
    public static let maxTerms = 16
    /// `a*` would match a good part of every message ever sent; two letters are the least a
    /// prefix takes (the index keeps prefixes of 2 and 3 characters for these).
    public static let minPrefixLength = 2

    public struct Term: Sendable, Equatable {
        /// The text of a word or phrase, as typed (the index's tokenizer splits it into
        /// words, folds case and diacritics). Never contains `"`.
        public let text: String
        /// Matches words that start with the last word of `text`.
        public let isPrefix: Bool

        public init(text: String, isPrefix: Bool) {
            self.text = text
            self.isPrefix = isPrefix
        }
    }

    public let terms: [Term]

    public init(terms: [Term]) {
        self.terms = terms
    }

    /// Parses `q`; every error message says what to change.
    public init(parsing raw: String) throws(ValidationError) {
        guard raw.unicodeScalars.count <= Self.maxLength else {
            throw ValidationError("q must be at most \(Self.maxLength) characters")
        }
        var terms: [Term] = []
        let scalars = Array(raw.unicodeScalars)
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar.properties.isWhitespace {
                index += 1
                continue
            }
            var text = String.UnicodeScalarView()
            var isPrefix = false
            if scalar == "\"" {
                index += 1
                while index < scalars.count, scalars[index] != "\"" {
                    text.append(scalars[index])
                    index += 1
                }
                guard index < scalars.count else {
                    throw ValidationError("q has an unclosed quote: a phrase is written \"like this\"")
                }
                index += 1
                if index < scalars.count, scalars[index] == "*" {
                    isPrefix = true
                    index += 1
                }
                if index < scalars.count, !scalars[index].properties.isWhitespace {
                    throw ValidationError("q needs a space after a closing quote")
                }
            } else {
                while index < scalars.count, !scalars[index].properties.isWhitespace, scalars[index] != "\"" {
                    text.append(scalars[index])
                    index += 1
                }
                if text.last == "*" {
                    isPrefix = true
                    text.removeLast()
                }
                if text.contains("*") {
                    throw ValidationError("q may use * only at the end of a word, as in hel*")
                }
            }
            let term = Term(text: String(text), isPrefix: isPrefix)
            guard let lastWord = Self.words(term.text).last else {
                // Punctuation alone is no word: the index would split it into nothing.
                if isPrefix { throw ValidationError("q has a * with no word before it") }
                continue
            }
            if isPrefix && lastWord.count < Self.minPrefixLength {
                throw ValidationError("a prefix search needs at least \(Self.minPrefixLength) letters or digits before *")
            }
            terms.append(term)
        }
        guard !terms.isEmpty else {
            throw ValidationError("q must contain at least one word (letters or digits)")
        }
        guard terms.count <= Self.maxTerms else {
            throw ValidationError("q may have at most \(Self.maxTerms) words and phrases")
        }
        self.terms = terms
    }

    /// The runs of letters and digits in `text`: roughly the words the index sees.
    static func words(_ text: String) -> [String.UnicodeScalarView] {
        var words: [String.UnicodeScalarView] = []
        var current = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isWordScalar(scalar) {
                current.append(scalar)
            } else if scalar.properties.generalCategory == .nonspacingMark, !current.isEmpty {
                continue  // a combining accent belongs to the letter before it
            } else if !current.isEmpty {
                words.append(current)
                current = String.UnicodeScalarView()
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    private static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .letterNumber, .otherNumber, .privateUse:
            true
        default:
            false
        }
    }
}
