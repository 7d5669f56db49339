import Domain

/// Read markers: how far each member has read each chat, and receipts.
extension Store {
    /// Moves `userID`'s marker in `chatID` forward to `messageID` (never back). Returns the
    /// marker and unread count after it; a move appends a READ event for the members (their
    /// receipts) and the reader's other devices (their badges).
    public func markRead(chatID: Int64, userID: Int64, messageID: Int64) throws -> ReadMarker {
        try database.write {
            _ = try accessibleChat(id: chatID, userID: userID)
            let inChat = try database.statement("SELECT 1 FROM messages WHERE id = ? AND chat_id = ?")
                .first([.integer(messageID), .integer(chatID)]) { _ in true } ?? false
            guard inChat else { throw MessengerError.invalid("message \(messageID) is not a message of chat \(chatID)") }
            let moved = try database.statement("""
                UPDATE chat_members SET last_read_id = ?1 WHERE chat_id = ?2 AND user_id = ?3 AND last_read_id < ?1
                """).run([.integer(messageID), .integer(chatID), .integer(userID)]) == 1
            let marker = try readMarker(chatID: chatID, userID: userID)
            if moved {
                var data = JSONWriter(capacity: 64)
                data.object { json in
                    json.field("chat_id", chatID)
                    json.field("user_id", userID)
                    json.field("last_read_id", marker.lastReadID)
                }
                try appendEvent(.read, .chat(chatID), data: data.bytes)
            }
            return marker
        }
    }

    /// Every member's marker in a chat `userID` belongs to.
    public func receipts(chatID: Int64, userID: Int64) throws -> [Receipt] {
        try database.read {
            _ = try accessibleChat(id: chatID, userID: userID)
            return try database.statement("SELECT user_id, last_read_id FROM chat_members WHERE chat_id = ? ORDER BY user_id")
                .rows([.integer(chatID)]) { Receipt(userID: $0.int(0), lastReadID: $0.int(1)) }
        }
    }

    private func readMarker(chatID: Int64, userID: Int64) throws -> ReadMarker {
        let lastReadID = try database.statement("SELECT last_read_id FROM chat_members WHERE chat_id = ? AND user_id = ?")
            .first([.integer(chatID), .integer(userID)]) { $0.int(0) } ?? 0
        return ReadMarker(chatID: chatID, lastReadID: lastReadID,
                          unreadCount: try unreadCount(chatID: chatID, userID: userID, after: lastReadID))
    }

    /// Live messages from others after `after`.
    func unreadCount(chatID: Int64, userID: Int64, after: Int64) throws -> Int64 {
        try database.statement("""
            SELECT count(*) FROM messages WHERE chat_id = ? AND id > ? AND sender_id <> ? AND deleted_at IS NULL
            """).first([.integer(chatID), .integer(after), .integer(userID)]) { $0.int(0) } ?? 0
    }
}

/// The answer to `POST /chats/:id/read`.
public struct ReadMarker: Sendable, Equatable, JSONEncodable {
    public let chatID: Int64
    public let lastReadID: Int64
    public let unreadCount: Int64

    public func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("chat_id", chatID)
            json.field("last_read_id", lastReadID)
            json.field("unread_count", unreadCount)
        }
    }
}

/// One member's marker, for `GET /chats/:id/receipts`.
public struct Receipt: Sendable, Equatable, JSONEncodable {
    public let userID: Int64
    public let lastReadID: Int64

    public func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("user_id", userID)
            json.field("last_read_id", lastReadID)
        }
    }
}
