import Domain

/// Changes to stored messages — edits, deletions, reactions — each with its event in the
/// same transaction.
extension Store {
    /// Replaces the content of `userID`'s own message; returns it as edited.
    public func editMessage(chatID: Int64, messageID: Int64, by userID: Int64, content: String?) throws -> Message {
        try database.write {
            let original = try actionableMessage(chatID: chatID, messageID: messageID, userID: userID)
            guard original.senderID == userID else {
                throw MessengerError.forbidden("only its sender may edit message \(messageID)")
            }
            do {
                try MessageDraft.validate(content: content, hasFiles: !original.files.isEmpty)
            } catch let invalid as ValidationError {
                throw MessengerError(invalid)
            }
            try database.statement("UPDATE messages SET content = ?, edited_at = ? WHERE id = ?")
                .run([SQLValue(content), .text(StoredTime.now()), .integer(messageID)])
            try appendEvent(.messageEdited, .chat(chatID), messageID: messageID)
            guard let edited = try message(id: messageID) else { throw StorageError(code: 0, message: "message vanished") }
            return edited
        }
    }

    /// Deletes a message: by its sender, or by an owner or admin of the group. It leaves
    /// history, its attachments and reactions go with it, and a second deletion is a 404.
    public func deleteMessage(chatID: Int64, messageID: Int64, by userID: Int64) throws {
        try database.write {
            let message = try actionableMessage(chatID: chatID, messageID: messageID, userID: userID)
            if message.senderID != userID {
                guard let chat = try chat(id: chatID), chat.kind == .group,
                      [.owner, .admin].contains(try role(chatID: chatID, userID: userID)) else {
                    throw MessengerError.forbidden("only its sender or a group's owner or admin may delete message \(messageID)")
                }
            }
            try database.statement("UPDATE messages SET deleted_at = ?, content = NULL WHERE id = ?")
                .run([.text(StoredTime.now()), .integer(messageID)])
            try database.statement("DELETE FROM message_files WHERE message_id = ?").run([.integer(messageID)])
            try database.statement("DELETE FROM reactions WHERE message_id = ?").run([.integer(messageID)])
            var data = JSONWriter(capacity: 48)
            data.object { json in
                json.field("chat_id", chatID)
                json.field("message_id", messageID)
            }
            try appendEvent(.messageDeleted, .chat(chatID), messageID: messageID, data: data.bytes)
        }
    }

    /// Adds (`present`) or takes back `userID`'s reaction with `emoji`. Idempotent: returns
    /// whether anything changed, and only a change appends a REACTION event.
    @discardableResult
    public func setReaction(chatID: Int64, messageID: Int64, by userID: Int64, emoji: String, present: Bool) throws -> Bool {
        try database.write {
            _ = try actionableMessage(chatID: chatID, messageID: messageID, userID: userID)
            let exists = try database.statement("""
                SELECT 1 FROM reactions WHERE message_id = ? AND emoji = ? AND user_id = ?
                """).first([.integer(messageID), .text(emoji), .integer(userID)]) { _ in true } ?? false
            guard exists != present else { return false }
            if present {
                let emojiKnown = try database.statement("SELECT 1 FROM reactions WHERE message_id = ? AND emoji = ?")
                    .first([.integer(messageID), .text(emoji)]) { _ in true } ?? false
                let distinct = try database.statement("SELECT count(DISTINCT emoji) FROM reactions WHERE message_id = ?")
                    .first([.integer(messageID)]) { $0.int(0) } ?? 0
                guard emojiKnown || distinct < Emoji.maxPerMessage else {
                    throw MessengerError.invalid("a message may carry at most \(Emoji.maxPerMessage) different emoji")
                }
            }
            var data = JSONWriter(capacity: 96)
            data.object { json in
                json.field("chat_id", chatID)
                json.field("message_id", messageID)
                json.field("user_id", userID)
                json.field("emoji", emoji)
                json.key("added")
                json.bool(present)
            }
            let seq = try appendEvent(.reaction, .chat(chatID), messageID: messageID, data: data.bytes)
            if present {
                try database.statement("INSERT INTO reactions (message_id, emoji, user_id, seq) VALUES (?, ?, ?, ?)")
                    .run([.integer(messageID), .text(emoji), .integer(userID), .integer(seq)])
            } else {
                try database.statement("DELETE FROM reactions WHERE message_id = ? AND emoji = ? AND user_id = ?")
                    .run([.integer(messageID), .text(emoji), .integer(userID)])
            }
            return true
        }
    }

    /// `userID`'s role in `chatID`, nil when not a member.
    public func role(chatID: Int64, userID: Int64) throws -> ChatRole? {
        try database.statement("SELECT role FROM chat_members WHERE chat_id = ? AND user_id = ?")
            .first([.integer(chatID), .integer(userID)]) { ChatRole(rawValue: $0.string(0)) } ?? nil
    }

    /// The live message a member acts on: 404 for an unknown chat, 403 for a non-member, 404
    /// for a message that is unknown, of another chat, or deleted.
    private func actionableMessage(chatID: Int64, messageID: Int64, userID: Int64) throws -> Message {
        _ = try accessibleChat(id: chatID, userID: userID)
        guard let message = try message(id: messageID), message.chatID == chatID else {
            throw MessengerError.notFound("message \(messageID) not found in chat \(chatID)")
        }
        return message
    }
}
