/// A conversation: a direct chat between two people (or one, with yourself) or a named group.
public struct Chat: Sendable, Equatable, JSONEncodable {
    public enum Kind: String, Sendable {
        case direct
        case group
    }

    public let id: Int64
    public let name: String?
    public let kind: Kind
    /// RFC 3339 UTC, as stored.
    public let createdAt: String
    /// Member user ids, ascending.
    public let participants: [Int64]

    public init(id: Int64, name: String?, kind: Kind, createdAt: String, participants: [Int64]) {
        self.id = id
        self.name = name
        self.kind = kind
        self.createdAt = createdAt
        self.participants = participants
    }

    public func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("id", id)
            json.field("name", name)
            json.field("chat_type", kind.rawValue)
            json.field("created_at", createdAt)
            json.field("participants", participants)
        }
    }
}

/// The answer to `POST /chats/initiate`.
public struct InitiatedChat: Sendable, Equatable, JSONEncodable {
    public let chatID: Int64
    /// Whether this call created the chat; `false` when the pair already had one.
    public let created: Bool

    public init(chatID: Int64, created: Bool) {
        self.chatID = chatID
        self.created = created
    }

    public func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("chat_id", chatID)
            json.field("status", created ? "created" : "exists")
        }
    }
}

/// `POST /chats`: a new group chat.
public struct GroupDraft: Sendable, Equatable {
    public static let maxNameLength = 100
    public static let maxParticipants = 1000

    public let name: String
    public let participants: [Int64]

    public init(_ fields: JSONFields) throws(ValidationError) {
        let name = try fields.string("name")
        guard !name.allSatisfy(\.isWhitespace) else { throw ValidationError("name must not be empty") }
        guard name.unicodeScalars.count <= Self.maxNameLength else {
            throw ValidationError("name must be at most \(Self.maxNameLength) characters")
        }
        guard let values = try fields.optionalArray("participants") else {
            throw ValidationError("participants is required")
        }
        guard values.count <= Self.maxParticipants else {
            throw ValidationError("a group may have at most \(Self.maxParticipants) participants")
        }
        var ids: [Int64] = []
        for value in values {
            guard case .int(let id) = value, id > 0 else {
                throw ValidationError("participants must be positive integer user ids")
            }
            ids.append(id)
        }
        self.name = name
        self.participants = ids
    }
}
