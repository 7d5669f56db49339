/// A message in a chat; the seed's message object, as returned by history and pushed live.
public struct Message: Sendable, Equatable, JSONEncodable {
    public let id: Int64
    public let chatID: Int64
    public let senderID: Int64
    public let content: String?
    /// RFC 3339 UTC, as stored.
    public let timestamp: String
    public let files: [StoredFile]

    public init(id: Int64, chatID: Int64, senderID: Int64, content: String?, timestamp: String, files: [StoredFile]) {
        self.id = id
        self.chatID = chatID
        self.senderID = senderID
        self.content = content
        self.timestamp = timestamp
        self.files = files
    }

    public func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("id", id)
            json.field("chat_id", chatID)
            json.field("sender_id", senderID)
            json.field("content", content)
            json.field("timestamp", timestamp)
            json.field("files", files)
        }
    }
}

/// The answer to `GET /chats/:id/messages`.
public struct MessagePage: Sendable, Equatable, JSONEncodable {
    public let chatID: Int64
    public let messages: [Message]

    public init(chatID: Int64, messages: [Message]) {
        self.chatID = chatID
        self.messages = messages
    }

    public func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("chat_id", chatID)
            json.field("messages", messages)
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
