import Foundation

/// The rules for usernames (DESIGN, "Usernames"): 1–32 characters, letters of any script,
/// digits, `_ . -`, starting with a letter — so a path segment made only of digits is always
/// an id and never a name. Names are stored NFC-normalized and are unique ignoring case by
/// Unicode case folding (`key(for:)`): `Алиса` and `алиса`, `Straße` and `STRASSE` are one
/// user. Every name valid under the old ASCII rule (`[A-Za-z0-9_.-]`) is still valid.
public enum Username {
    /// In characters (extended grapheme clusters), as a person counts them.
    public static let maxLength = 32
    /// In UTF-8 bytes after normalization: bounds a name of 32 characters that each carry a
    /// pile of combining marks.
    public static let maxBytes = 128

    /// `name` NFC-normalized when it is a valid username, else a message naming the rule it
    /// breaks (and the character, when one is to blame).
    public static func validate(_ name: String) throws(ValidationError) -> String {
        guard !name.isEmpty else { throw ValidationError("username must not be empty") }
        // Checked before normalizing, so that a huge input costs nothing.
        guard name.utf8.count <= maxBytes * 4 else {
            throw ValidationError("username must be at most \(maxLength) characters")
        }
        let normalized = name.precomposedStringWithCanonicalMapping
        guard normalized.count <= maxLength else {
            throw ValidationError("username must be at most \(maxLength) characters")
        }
        guard normalized.utf8.count <= maxBytes else {
            throw ValidationError("username must be at most \(maxBytes) bytes of UTF-8")
        }
        guard let first = normalized.unicodeScalars.first, isLetter(first) else {
            throw ValidationError("username must start with a letter (of any script), not \(describe(normalized.first!))")
        }
        for character in normalized {
            for scalar in character.unicodeScalars where !isAllowed(scalar) {
                throw ValidationError(
                    "username may contain only letters, digits, '_', '.' and '-'; \(describe(character)) is not allowed")
            }
        }
        return normalized
    }

    /// Whether `name` could be a username; used to tell `/users/42` from `/users/alice`.
    public static func isValid(_ name: String) -> Bool {
        (try? validate(name)) != nil
    }

    /// What uniqueness and look-ups compare: the NFC form of the full Unicode case folding
    /// of a validated name (`Straße` → `strasse`, `Алиса` → `алиса`). Case folding, not
    /// lower-casing: it is what Unicode defines for caseless matching.
    public static func key(for validated: String) -> String {
        validated.folding(options: [.caseInsensitive], locale: nil).precomposedStringWithCanonicalMapping
    }

    private static func isLetter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: true
        default: false
        }
    }

    /// Letters, combining marks (the vowel signs of Devanagari, accents NFC cannot compose),
    /// decimal digits of any script, and `_ . -`.
    private static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "_" || scalar == "." || scalar == "-" { return true }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber:
            return true
        default:
            return false
        }
    }

    /// A character for an error message: printable ones quoted, others as code points.
    private static func describe(_ character: Character) -> String {
        let printable = character.unicodeScalars.allSatisfy { scalar in
            switch scalar.properties.generalCategory {
            case .control, .format, .surrogate, .privateUse, .unassigned, .spaceSeparator, .lineSeparator,
                 .paragraphSeparator:
                false
            default:
                true
            }
        }
        let codes = character.unicodeScalars.map { String(format: "U+%04X", $0.value) }.joined(separator: " ")
        return printable ? "'\(character)' (\(codes))" : codes
    }
}
