/// `PATCH /users/me`: which profile fields to change. A field that is absent stays as it
/// is; a field sent as `null` is cleared.
public struct ProfileUpdate: Sendable, Equatable {
    public enum Change<Value: Sendable & Equatable>: Sendable, Equatable {
        case keep
        case set(Value?)
    }

    public static let maxDisplayNameLength = 64
    public static let maxBioLength = 500

    public var displayName: Change<String> = .keep
    public var bio: Change<String> = .keep
    public var imageID: Change<Int64> = .keep

    public init() {}

    public init(_ fields: JSONFields) throws(ValidationError) {
        let known: Set<String> = ["display_name", "bio", "image_id"]
        if let unknown = fields.members.keys.sorted().first(where: { !known.contains($0) }) {
            throw ValidationError("unknown field \(unknown); expected display_name, bio or image_id")
        }
        if fields.members["display_name"] != nil {
            let value = try fields.optionalString("display_name")
            if let value, value.unicodeScalars.count > Self.maxDisplayNameLength {
                throw ValidationError("display_name must be at most \(Self.maxDisplayNameLength) characters")
            }
            displayName = .set(value)
        }
        if fields.members["bio"] != nil {
            let value = try fields.optionalString("bio")
            if let value, value.unicodeScalars.count > Self.maxBioLength {
                throw ValidationError("bio must be at most \(Self.maxBioLength) characters")
            }
            bio = .set(value)
        }
        if fields.members["image_id"] != nil {
            imageID = .set(try fields.optionalID("image_id"))
        }
    }
}
