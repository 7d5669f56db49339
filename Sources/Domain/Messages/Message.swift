/// A message in a chat. It encodes as the seed's message object (history and protocol-1
/// frames); `full` is the protocol-2 shape, with replies, edits and reactions.
public struct Message: Sendable, Equatable, JSONEncodable {
    public let id: Int64
    public let chatID: Int64
    public let senderID: Int64
    public let content: String?
    /// RFC 3339 UTC, as stored.
    public let timestamp: String
    public var files: [StoredFile]
    public let replyToID: Int64?
    public let editedAt: String?
    /// Each emoji used, in the order it was first used.
    public var reactions: [Reaction]

    public init(id: Int64, chatID: Int64, senderID: Int64, content: String?, timestamp: String, files: [StoredFile],
                replyToID: Int64? = nil, editedAt: String? = nil, reactions: [Reaction] = []) {
        self.id = id
        self.chatID = chatID
        self.senderID = senderID
        self.content = content
        self.timestamp = timestamp
        self.files = files
        self.replyToID = replyToID
        self.editedAt = editedAt
        self.reactions = reactions
    }

    /// The seed's message object, exactly its fields.
    public func encode(to writer: inout JSONWriter) {
        writer.object { json in writeSeedFields(&json) }
    }

    /// The protocol-2 message: the seed's fields, then `reply_to_id`, `edited_at`, `reactions`.
    public var full: some JSONEncodable { FullMessage(message: self) }

    fileprivate func writeSeedFields(_ json: inout JSONWriter) {
        json.field("id", id)
        json.field("chat_id", chatID)
        json.field("sender_id", senderID)
        json.field("content", content)
        json.field("timestamp", timestamp)
        json.field("files", files)
    }
}

private struct FullMessage: JSONEncodable {
    let message: Message

    func encode(to writer: inout JSONWriter) {
        writer.object { json in
            message.writeSeedFields(&json)
            json.field("reply_to_id", message.replyToID)
            json.field("edited_at", message.editedAt)
            json.field("reactions", message.reactions)
        }
    }
}

/// One emoji on a message: how many reacted with it, and the first of them.
public struct Reaction: Sendable, Equatable, JSONEncodable {
    /// The most user ids one reaction lists.
    public static let maxListedUsers = 20

    public let emoji: String
    public let count: Int64
    /// The first `maxListedUsers` who reacted, in the order they did.
    public let userIDs: [Int64]

    public init(emoji: String, count: Int64, userIDs: [Int64]) {
        self.emoji = emoji
        self.count = count
        self.userIDs = userIDs
    }

    public func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("emoji", emoji)
            json.field("count", count)
            json.field("user_ids", userIDs)
        }
    }
}

/// The answer to `GET /chats/:id/messages`.
public struct MessagePage: Sendable, Equatable, JSONEncodable {
    public let chatID: Int64
    public let messages: [Message]
    public let version: ProtocolVersion

    public init(chatID: Int64, messages: [Message], version: ProtocolVersion = .v1) {
        self.chatID = chatID
        self.messages = messages
        self.version = version
    }

    public func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("chat_id", chatID)
            json.key("messages")
            switch version {
            case .v1: json.array(messages)
            case .v2: json.array(messages.map(\.full))
            }
        }
    }
}

/// A message in the shape of the earlier API (seed 001): addressed to a person, not a chat.
public struct LegacyMessage: Sendable, Equatable, JSONEncodable {
    public let id: Int64
    public let senderID: Int64
    public let receiverID: Int64
    /// Seed 001 has no attachments and its content is never null; a files-only message
    /// shows as an empty string.
    public let content: String
    public let timestamp: String

    /// `message` from a direct chat between `userID` and `peerID` (the same id for a chat with
    /// yourself).
    public init(_ message: Message, userID: Int64, peerID: Int64) {
        id = message.id
        senderID = message.senderID
        receiverID = message.senderID == userID ? peerID : userID
        content = message.content ?? ""
        timestamp = message.timestamp
    }

    public func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("id", id)
            json.field("sender_id", senderID)
            json.field("receiver_id", receiverID)
            json.field("content", content)
            json.field("timestamp", timestamp)
        }
    }
}
