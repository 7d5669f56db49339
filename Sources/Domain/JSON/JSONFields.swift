/// Input that broke a rule of the API; `message` is safe to show to the client.
///
/// Both processes turn it into their own error shape: FCGIApp a 400 with `{"error": …}`,
/// WSRelay an `ERROR` frame.
public struct ValidationError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Typed, named access to the members of a JSON object, with errors a client can act on.
///
/// Absent and `null` are treated alike for optional fields, so a client may send either.
public struct JSONFields {
    public let members: [String: JSON]

    /// Parses `bytes` and requires the top-level value to be an object.
    public init(parsing bytes: some Collection<UInt8>) throws(ValidationError) {
        guard !bytes.isEmpty else { throw ValidationError("request body must be a JSON object") }
        let value: JSON
        do {
            value = try JSONParser.parse(bytes)
        } catch {
            throw ValidationError("malformed JSON: \(error.reason)")
        }
        try self.init(value)
    }

    public init(_ value: JSON) throws(ValidationError) {
        guard case .object(let members) = value else {
            throw ValidationError("expected a JSON object, got \(value.typeName)")
        }
        self.members = members
    }

    public func contains(_ key: String) -> Bool {
        if let value = members[key], value != .null { return true }
        return false
    }

    public func string(_ key: String) throws(ValidationError) -> String {
        guard let value = try optionalString(key) else { throw ValidationError("\(key) is required") }
        return value
    }

    public func optionalString(_ key: String) throws(ValidationError) -> String? {
        switch members[key] {
        case nil, .null?: return nil
        case .string(let value)?:
            // NUL is valid JSON but no name, text or token of ours may carry it.
            guard !value.utf8.contains(0) else { throw ValidationError("\(key) must not contain NUL characters") }
            return value
        case let other?: throw ValidationError("\(key) must be a string, got \(other.typeName)")
        }
    }

    public func int(_ key: String) throws(ValidationError) -> Int64 {
        guard let value = try optionalInt(key) else { throw ValidationError("\(key) is required") }
        return value
    }

    public func optionalInt(_ key: String) throws(ValidationError) -> Int64? {
        switch members[key] {
        case nil, .null?: return nil
        case .int(let value)?: return value
        case .double?: throw ValidationError("\(key) must be an integer within 64 bits")
        case let other?: throw ValidationError("\(key) must be an integer, got \(other.typeName)")
        }
    }

    /// A positive integer id.
    public func id(_ key: String) throws(ValidationError) -> Int64 {
        guard let value = try optionalID(key) else { throw ValidationError("\(key) is required") }
        return value
    }

    public func optionalID(_ key: String) throws(ValidationError) -> Int64? {
        guard let value = try optionalInt(key) else { return nil }
        guard value > 0 else { throw ValidationError("\(key) must be a positive integer") }
        return value
    }

    public func optionalArray(_ key: String) throws(ValidationError) -> [JSON]? {
        switch members[key] {
        case nil, .null?: return nil
        case .array(let values)?: return values
        case let other?: throw ValidationError("\(key) must be an array, got \(other.typeName)")
        }
    }
}
