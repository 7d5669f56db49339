/// The rules for usernames: 1–32 of `[A-Za-z0-9_.-]`, starting with a letter, so that a
/// path segment made only of digits is always an id and never a name.
public enum Username {
    public static let maxLength = 32

    /// Returns `name` when it is a valid username, else throws a message naming the rule.
    public static func validate(_ name: String) throws(ValidationError) -> String {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty else { throw ValidationError("username must not be empty") }
        guard bytes.count <= maxLength else {
            throw ValidationError("username must be at most \(maxLength) characters")
        }
        guard isLetter(bytes[0]) else { throw ValidationError("username must start with a letter") }
        for byte in bytes where !(isLetter(byte) || isDigit(byte) || byte == UInt8(ascii: "_")
                                  || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")) {
            throw ValidationError("username may contain only letters, digits, '_', '.' and '-'")
        }
        return name
    }

    /// Whether `name` could be a username; used to tell `/users/42` from `/users/alice`.
    public static func isValid(_ name: String) -> Bool {
        (try? validate(name)) != nil
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
