/// A parsed JSON value.
///
/// We parse request bodies and WebSocket frames into this tree rather than straight into
/// `Decodable` types so that every field can be checked by name and type with a precise,
/// human-readable error ("chat_id must be an integer"), and so that integers beyond `Int64`
/// are recognised as such instead of silently turning into doubles.
public enum JSON: Equatable, Sendable {
    case null
    case bool(Bool)
    /// An integer literal that fits `Int64`.
    case int(Int64)
    /// Any other number: fractions, exponents, and integers too large for `Int64`.
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    /// The name of the value's type, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int, .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    public subscript(key: String) -> JSON? {
        if case .object(let members) = self { return members[key] }
        return nil
    }
}
