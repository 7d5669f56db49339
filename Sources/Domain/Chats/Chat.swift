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

    /// The chat object of seed 000 and the desktop client: exactly its fields.
    public func encode(to writer: inout JSONWriter) {
        writer.object { json in writeSeedFields(&json) }
    }

    fileprivate func writeSeedFields(_ json: inout JSONWriter) {
        json.field("id", id)
        json.field("name", name)
        json.field("chat_type", kind.rawValue)
        json.field("created_at", createdAt)
        json.field("participants", participants)
    }
}

/// A member's standing in a chat. A group's creator is its owner; both members of a direct
/// chat are plain members.
public enum ChatRole: String, Sendable, CaseIterable {
    case owner
    case admin
    case member
}

/// A chat as one member sees it: the protocol-2 chat object, with the newest message, that
/// member's read marker and unread count, and their role.
public struct ChatView: Sendable, Equatable, JSONEncodable {
    public let chat: Chat
    public var lastMessage: Message?
    public let unreadCount: Int64
    public let lastReadID: Int64
    public let role: ChatRole

    public init(chat: Chat, lastMessage: Message?, unreadCount: Int64, lastReadID: Int64, role: ChatRole) {
        self.chat = chat
        self.lastMessage = lastMessage
        self.unreadCount = unreadCount
        self.lastReadID = lastReadID
        self.role = role
    }

    public func encode(to writer: inout JSONWriter) {
        writer.object { json in
            chat.writeSeedFields(&json)
            json.key("last_message")
            if let lastMessage { lastMessage.full.encode(to: &json) } else { json.null() }
            json.field("unread_count", unreadCount)
            json.field("last_read_id", lastReadID)
            json.field("my_role", role.rawValue)
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
    public static let maxNameLength = 128
    /// Participants besides the creator, at creation and at most ever after.
    public static let maxParticipants = 1000
    /// Members a group may hold: its creator and `maxParticipants` others.
    public static var maxMembers: Int { maxParticipants + 1 }

    public let name: String
    public let participants: [Int64]

    public init(_ fields: JSONFields) throws(ValidationError) {
        let name = try Self.validateName(fields.string("name"))
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

    /// A group's name: 1–128 characters, not blank.
    public static func validateName(_ name: String) throws(ValidationError) -> String {
        guard !name.allSatisfy(\.isWhitespace) else { throw ValidationError("name must not be empty") }
        guard name.unicodeScalars.count <= maxNameLength else {
            throw ValidationError("name must be at most \(maxNameLength) characters")
        }
        return name
    }
}

/// One member of a chat as `GET /chats/:id/members` lists it.
public struct ChatMember: Sendable, Equatable, JSONEncodable {
    public let userID: Int64
    public let role: ChatRole
    public let joinedAt: String

    public init(userID: Int64, role: ChatRole, joinedAt: String) {
        self.userID = userID
        self.role = role
        self.joinedAt = joinedAt
    }

    public func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("user_id", userID)
            json.field("role", role.rawValue)
            json.field("joined_at", joinedAt)
        }
    }
}
