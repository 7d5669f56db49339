/// A person using the messenger; the seed's user object.
public struct User: Sendable, Equatable, JSONEncodable {
    public let id: Int64
    public let username: String
    public let displayName: String?
    public let bio: String?
    public let imageID: Int64?

    public init(id: Int64, username: String, displayName: String?, bio: String?, imageID: Int64?) {
        self.id = id
        self.username = username
        self.displayName = displayName
        self.bio = bio
        self.imageID = imageID
    }

    public func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("id", id)
            json.field("username", username)
            json.field("display_name", displayName)
            json.field("bio", bio)
            json.field("image_id", imageID)
        }
    }
}
