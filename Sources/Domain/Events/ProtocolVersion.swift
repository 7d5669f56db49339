/// Which shapes a client reads: the seeds' (1, the default) or the full messenger's (2).
///
/// Opted into per request (`?v=2`) and per socket (`/ws?v=2`, or `"v": 2` in IDENTIFY), so
/// that seed clients and the strict desktop client see exactly the seed shapes (DESIGN,
/// invariant 3).
public enum ProtocolVersion: Int, Sendable, Equatable, Comparable {
    case v1 = 1
    case v2 = 2

    /// `"1"` or `"2"`; anything else is refused.
    public init(parsing text: some StringProtocol) throws(ValidationError) {
        switch text {
        case "1": self = .v1
        case "2": self = .v2
        default: throw ValidationError("v must be 1 or 2")
        }
    }

    public static func < (lhs: ProtocolVersion, rhs: ProtocolVersion) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A position in the event stream, as a client sends it (`since`): an integer ≥ 0.
public enum StreamPosition {
    public static func parse(_ text: some StringProtocol) throws(ValidationError) -> Int64 {
        guard let seq = Int64(text), seq >= 0, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw ValidationError("since must be an integer ≥ 0")
        }
        return seq
    }
}
