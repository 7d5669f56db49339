/// A reaction's emoji, as it comes in a path segment (already percent-decoded).
public enum Emoji {
    public static let maxScalars = 8
    /// Distinct emoji one message may carry.
    public static let maxPerMessage = 20

    /// One emoji: 1–8 Unicode scalars (a flag, a skin tone or a ZWJ sequence takes several),
    /// none of them whitespace, a control character, or an ASCII letter or digit, so that a
    /// word or a number is never taken for a reaction.
    public static func validate(_ text: String) throws(ValidationError) -> String {
        let scalars = text.unicodeScalars
        guard (1...maxScalars).contains(scalars.count) else {
            throw ValidationError("an emoji is 1 to \(maxScalars) Unicode scalars")
        }
        for scalar in scalars {
            let properties = scalar.properties
            if properties.isWhitespace || properties.generalCategory == .control
                || (scalar.isASCII && (properties.isAlphabetic || ("0"..."9").contains(scalar))) {
                throw ValidationError("not an emoji: \(text.debugDescription)")
            }
        }
        return text
    }
}
