import Domain

/// Which page of a chat's history to read.
public struct MessageQuery: Sendable, Equatable {
    public static let defaultLimit = 100
    public static let maxLimit = 1000

    public var limit: Int
    /// Only messages with a smaller id.
    public var beforeID: Int64?
    /// Only messages with a larger id. With `afterID` the page is the oldest `limit` messages
    /// after it; without, the newest `limit` (before `beforeID`, if given). Always ascending.
    public var afterID: Int64?

    public init(limit: Int = MessageQuery.defaultLimit, beforeID: Int64? = nil, afterID: Int64? = nil) {
        self.limit = limit
        self.beforeID = beforeID
        self.afterID = afterID
    }
}

/// A send to store: who, where, what.
public struct OutgoingMessage: Sendable, Equatable {
    public let senderID: Int64
    public let chatID: Int64
    public let draft: MessageDraft

    public init(senderID: Int64, chatID: Int64, draft: MessageDraft) {
        self.senderID = senderID
        self.chatID = chatID
        self.draft = draft
    }
}

/// A stored message, and whether this call stored it (`false`: its nonce was seen before
/// and this is the message stored then).
public struct PostedMessage: Sendable, Equatable {
    public let message: Message
    public let isNew: Bool
}

extension Store {
    /// Message rows joined with their files; one row per (message, file), in order.
    private static func messageSelect(inner: String, order: String = "ASC") -> String {
        """
        SELECT m.id, m.chat_id, m.sender_id, m.content, m.created_at,
               f.id, f.uploader_id, f.kind, f.stored_name, f.filename, f.mime_type, f.size_bytes, f.created_at
        FROM (\(inner)) m
        LEFT JOIN message_files mf ON mf.message_id = m.id
        LEFT JOIN files f ON f.id = mf.file_id
        ORDER BY m.id \(order), mf.position
        """
    }

    private func messages(_ statement: Statement, _ values: [SQLValue]) throws -> [Message] {
        var result: [Message] = []
        var pending: (id: Int64, chatID: Int64, senderID: Int64, content: String?, timestamp: String, files: [StoredFile])?
        try statement.bind(values)
        while try statement.step() {
            let row = Row(statement: statement)
            let id = row.int(0)
            if pending?.id != id {
                if let done = pending {
                    result.append(Message(id: done.id, chatID: done.chatID, senderID: done.senderID,
                                          content: done.content, timestamp: done.timestamp, files: done.files))
                }
                pending = (id, row.int(1), row.int(2), row.optionalString(3), row.string(4), [])
            }
            if row.optionalInt(5) != nil {
                pending?.files.append(Self.file(row, offset: 5))
            }
        }
        if let done = pending {
            result.append(Message(id: done.id, chatID: done.chatID, senderID: done.senderID,
                                  content: done.content, timestamp: done.timestamp, files: done.files))
        }
        return result
    }

    /// One page of a chat's history, ascending by id. Membership is the caller's to check.
    public func messages(chatID: Int64, query: MessageQuery) throws -> [Message] {
        let limit = SQLValue.integer(Int64(query.limit))
        let before = SQLValue.integer(query.beforeID ?? Int64.max)
        return try connection.read {
            if let after = query.afterID {
                let inner = "SELECT * FROM messages WHERE chat_id = ? AND id > ? AND id < ? ORDER BY id LIMIT ?"
                return try messages(connection.statement(Self.messageSelect(inner: inner)),
                                    [.integer(chatID), .integer(after), before, limit])
            }
            let inner = "SELECT * FROM messages WHERE chat_id = ? AND id < ? ORDER BY id DESC LIMIT ?"
            return try messages(connection.statement(Self.messageSelect(inner: inner)),
                                [.integer(chatID), before, limit])
        }
    }

    /// Messages of every chat after `messageID`, ascending: the relay's catch-up read.
    public func messages(after messageID: Int64, limit: Int) throws -> [Message] {
        try connection.read {
            let inner = "SELECT * FROM messages WHERE id > ? ORDER BY id LIMIT ?"
            return try messages(connection.statement(Self.messageSelect(inner: inner)),
                                [.integer(messageID), .integer(Int64(limit))])
        }
    }

    /// Messages with ids in `after+1...through` from chats `userID` belongs to, ascending:
    /// what a connection registering late missed since its handshake.
    public func messages(visibleTo userID: Int64, after: Int64, through: Int64, limit: Int) throws -> [Message] {
        try connection.read {
            let inner = """
                SELECT * FROM messages WHERE id > ? AND id <= ?
                AND chat_id IN (SELECT chat_id FROM chat_members WHERE user_id = ?) ORDER BY id LIMIT ?
                """
            return try messages(connection.statement(Self.messageSelect(inner: inner)),
                                [.integer(after), .integer(through), .integer(userID), .integer(Int64(limit))])
        }
    }

    public func message(id: Int64) throws -> Message? {
        let inner = "SELECT * FROM messages WHERE id = ?"
        return try messages(connection.statement(Self.messageSelect(inner: inner)), [.integer(id)]).first
    }

    public func latestMessageID() throws -> Int64 {
        try connection.statement("SELECT coalesce(max(id), 0) FROM messages").first { $0.int(0) } ?? 0
    }

    /// Stores one message in its own transaction.
    public func post(_ outgoing: OutgoingMessage) throws -> PostedMessage {
        try connection.write { try insert(outgoing) }
    }

    /// Stores many messages in one transaction (group commit): one WAL commit for all of
    /// them. Each is checked on its own; a refused one is reported in its slot and the others
    /// are stored. No savepoint per message is needed: `insert` refuses before its first
    /// write, and any later failure is a storage error that rolls back the whole batch, in
    /// which case every slot carries that error.
    public func post(_ batch: [OutgoingMessage]) -> [Result<PostedMessage, any Error>] {
        var results: [Result<PostedMessage, any Error>] = []
        do {
            try connection.write {
                for outgoing in batch {
                    do {
                        results.append(.success(try insert(outgoing)))
                    } catch let refusal as MessengerError {
                        results.append(.failure(refusal))
                    }
                }
            }
        } catch {
            return batch.map { _ in .failure(error) }
        }
        return results
    }

    /// Checks and inserts one message inside the caller's transaction. Every refusal
    /// (`MessengerError`) is thrown before the first write.
    ///
    /// A repeated nonce is found by the insert itself (`ON CONFLICT DO NOTHING` on the unique
    /// sender + nonce index) rather than by a lookup first, and `created_at` is bound rather
    /// than returned (`RETURNING` builds a temporary table per row): on the relay's group
    /// commit the two cost a quarter of the time per message.
    private func insert(_ outgoing: OutgoingMessage) throws -> PostedMessage {
        let draft = outgoing.draft
        guard try isMember(chatID: outgoing.chatID, userID: outgoing.senderID) else {
            if try chat(id: outgoing.chatID) == nil {
                throw MessengerError.notFound("chat \(outgoing.chatID) not found")
            }
            throw MessengerError.forbidden("you are not a member of chat \(outgoing.chatID)")
        }
        var files: [StoredFile] = []
        for reference in draft.files {
            let file: StoredFile?
            switch reference {
            case .storedName(let name): file = try self.file(storedName: name)
            case .id(let id): file = try self.file(id: id)
            }
            guard let file, file.uploaderID == outgoing.senderID else {
                throw MessengerError.invalid("\(Self.describe(reference)) is not one of your uploads")
            }
            files.append(file)
        }
        let createdAt = StoredTime.now()
        try connection.statement("""
            INSERT INTO messages (chat_id, sender_id, content, nonce, created_at) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (sender_id, nonce) WHERE nonce IS NOT NULL DO NOTHING
            """).run([.integer(outgoing.chatID), .integer(outgoing.senderID), SQLValue(draft.content),
                      SQLValue(draft.nonce), .text(createdAt)])
        guard connection.changes == 1 else {
            // The sender used this nonce before: that message is the answer, stored once.
            guard let nonce = draft.nonce,
                  let existingID = try connection.statement("SELECT id FROM messages WHERE sender_id = ? AND nonce = ?")
                      .first([.integer(outgoing.senderID), .text(nonce)], { $0.int(0) }),
                  let existing = try message(id: existingID) else {
                throw StorageError(code: 0, message: "insert stored no row")
            }
            return PostedMessage(message: existing, isNew: false)
        }
        let id = connection.lastInsertRowID
        let link = try connection.statement("INSERT INTO message_files (message_id, position, file_id) VALUES (?, ?, ?)")
        for (position, file) in files.enumerated() {
            try link.run([.integer(id), .integer(Int64(position)), .integer(file.id)])
        }
        let message = Message(id: id, chatID: outgoing.chatID, senderID: outgoing.senderID, content: draft.content,
                              timestamp: createdAt, files: files)
        return PostedMessage(message: message, isNew: true)
    }

    private static func describe(_ reference: MessageDraft.FileReference) -> String {
        switch reference {
        case .storedName(let name): "file \(StoredFile.urlPrefix)\(name)"
        case .id(let id): "file \(id)"
        }
    }
}
