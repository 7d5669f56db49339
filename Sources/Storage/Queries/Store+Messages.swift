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
    /// The seq of its MESSAGE event; nil when it was stored before.
    public let seq: Int64?
}

extension Store {
    /// Message rows joined with their files; one row per (message, file), in order. Deleted
    /// messages are left out by `inner`, which selects from `liveMessages`.
    private static func messageSelect(inner: SQL, order: String = "ASC") -> SQL {
        """
        SELECT m.id, m.chat_id, m.sender_id, m.content, m.created_at, m.reply_to_id, m.edited_at,
               f.id, f.uploader_id, f.kind, f.stored_name, f.filename, f.mime_type, f.size_bytes, f.created_at
        FROM (\(inner)) m
        LEFT JOIN message_files mf ON mf.message_id = m.id
        LEFT JOIN files f ON f.id = mf.file_id
        ORDER BY m.id \(order), mf.position
        """
    }

    /// Messages that were not deleted, for the `inner` queries of `messageSelect`.
    private static let liveMessages = "(SELECT * FROM messages WHERE deleted_at IS NULL) AS live"

    /// Reads the rows of `messageSelect` into messages, with their reactions.
    private func messages(_ query: Query, _ values: [SQLValue]) throws -> [Message] {
        var result: [Message] = []
        try query.scan(values) { row in
            let id = row.int(0)
            if result.last?.id != id {
                result.append(Message(id: id, chatID: row.int(1), senderID: row.int(2), content: row.optionalString(3),
                                      timestamp: row.string(4), files: [], replyToID: row.optionalInt(5),
                                      editedAt: row.optionalString(6)))
            }
            if row.optionalInt(7) != nil {
                result[result.count - 1].files.append(Self.file(row, offset: 7))
            }
            return true
        }
        try attachReactions(to: &result)
        return result
    }

    /// Fills in each message's files, in their order (for messages read without
    /// `messageSelect`'s join).
    func attachFiles(to messages: inout [Message]) throws {
        guard !messages.isEmpty else { return }
        let list = SQLValue.idList(messages.map(\.id))
        var byMessage: [Int64: [StoredFile]] = [:]
        try database.statement(Self.filesOfMessages).rows([list]) { row in (row.int(0), Self.file(row, offset: 1)) }
            .forEach { messageID, file in byMessage[messageID, default: []].append(file) }
        guard !byMessage.isEmpty else { return }
        for index in messages.indices {
            messages[index].files = byMessage[messages[index].id] ?? []
        }
    }

    /// Fills in each message's reactions: emoji in the order first used, each with its count
    /// and first `Reaction.maxListedUsers` users.
    func attachReactions(to messages: inout [Message]) throws {
        guard !messages.isEmpty else { return }
        let list = SQLValue.idList(messages.map(\.id))
        var byMessage: [Int64: [Reaction]] = [:]
        let rows = try database.statement(Self.reactionsOfMessages).rows([list]) { row in
                let ids = row.string(3).split(separator: ",").prefix(Reaction.maxListedUsers).compactMap { Int64($0) }
                return (row.int(0), Reaction(emoji: row.string(1), count: row.int(2), userIDs: ids))
            }
        for (messageID, reaction) in rows { byMessage[messageID, default: []].append(reaction) }
        guard !byMessage.isEmpty else { return }
        for index in messages.indices {
            messages[index].reactions = byMessage[messages[index].id] ?? []
        }
    }

    private static let filesOfMessages: SQL = """
        SELECT mf.message_id, f.id, f.uploader_id, f.kind, f.stored_name, f.filename, f.mime_type, f.size_bytes,
               f.created_at
        FROM message_files mf JOIN files f ON f.id = mf.file_id
        WHERE mf.message_id IN \(.ids("?")) ORDER BY mf.message_id, mf.position
        """

    /// Each message's reactions per emoji, users in the order they reacted (SQLite 3.40
    /// concatenates in the order the ordered subquery yields its rows).
    private static let reactionsOfMessages: SQL = """
        SELECT message_id, emoji, count(*), \(.joinedIDs("user_id", orderedBy: "seq"))
        FROM (SELECT * FROM reactions WHERE message_id IN \(.ids("?")) ORDER BY seq) AS r
        GROUP BY message_id, emoji ORDER BY message_id, min(seq)
        """

    /// One page of a chat's history, ascending by id. Membership is the caller's to check.
    public func messages(chatID: Int64, query: MessageQuery) throws -> [Message] {
        let limit = SQLValue.integer(Int64(query.limit))
        let before = SQLValue.integer(query.beforeID ?? Int64.max)
        return try database.read {
            if let after = query.afterID {
                return try messages(database.statement(Self.messagesAfter), [.integer(chatID), .integer(after), before, limit])
            }
            return try messages(database.statement(Self.messagesBefore), [.integer(chatID), before, limit])
        }
    }

    /// The messages with these ids that were not deleted, ascending.
    public func messages(ids: [Int64]) throws -> [Message] {
        guard !ids.isEmpty else { return [] }
        return try messages(database.statement(Self.messagesByIDs), [SQLValue.idList(ids)])
    }

    /// The newest message of a chat that was not deleted.
    public func lastMessage(chatID: Int64) throws -> Message? {
        try messages(database.statement(Self.newestMessage), [.integer(chatID)]).first
    }

    public func message(id: Int64) throws -> Message? {
        try messages(database.statement(Self.messageByID), [.integer(id)]).first
    }

    private static let messagesAfter = messageSelect(inner: """
        SELECT * FROM \(liveMessages) WHERE chat_id = ? AND id > ? AND id < ? ORDER BY id LIMIT ?
        """)
    private static let messagesBefore = messageSelect(inner: """
        SELECT * FROM \(liveMessages) WHERE chat_id = ? AND id < ? ORDER BY id DESC LIMIT ?
        """)
    private static let messagesByIDs = messageSelect(inner: """
        SELECT * FROM \(liveMessages) WHERE id IN \(.ids("?"))
        """)
    private static let newestMessage = messageSelect(inner: """
        SELECT * FROM \(liveMessages) WHERE chat_id = ? ORDER BY id DESC LIMIT 1
        """)
    private static let messageByID = messageSelect(inner: "SELECT * FROM \(liveMessages) WHERE id = ?")

    /// Stores one message in its own transaction; with `sendLimit`, only if the sender's
    /// send bucket has a token (else `MessengerError.rateLimited`, and nothing is stored).
    public func post(_ outgoing: OutgoingMessage, sendLimit: RateLimit? = nil) throws -> PostedMessage {
        try database.write {
            try drawSendToken(for: outgoing, sendLimit, now: Store.rateClock())
            let posted = try insert(outgoing)
            if posted.isNew { try indexForSearch([posted.message.id]) }
            return posted
        }
    }

    /// Stores many messages in one transaction (group commit): one WAL commit for all of
    /// them. Each is checked on its own; a refused one is reported in its slot and the others
    /// are stored. No savepoint per message is needed: `insert` refuses before its first
    /// write, and any later failure is a storage error that rolls back the whole batch, in
    /// which case every slot carries that error.
    ///
    /// With `sendLimit`, each message first takes a token from its sender's send bucket, in
    /// the same transaction (a big batch's draws all at once, `drawSendTokens`): one over the
    /// limit is refused (`MessengerError.rateLimited`) and not stored, so what is stored never
    /// exceeds what the limit allows.
    public func post(_ batch: [OutgoingMessage], sendLimit: RateLimit? = nil) -> [Result<PostedMessage, any Error>] {
        var results: [Result<PostedMessage, any Error>] = []
        do {
            try database.write {
                let now = Store.rateClock()
                // A big batch (the relay's rounds under load) draws all its tokens in two
                // statements; a small one (FCGIApp's, a few sends) one UPDATE per send, cheaper
                // than those two statements until about 16 sends.
                let refusals = try sendLimit.flatMap { limit in
                    batch.count >= Self.batchDrawThreshold
                        ? try drawSendTokens(limit, senders: batch.map(\.senderID), now: now) : nil
                }
                var stored: [Int64] = []
                for (index, outgoing) in batch.enumerated() {
                    do {
                        if let refusals {
                            if let refusal = refusals[index] { throw MessengerError.rateLimited(refusal) }
                        } else {
                            try drawSendToken(for: outgoing, sendLimit, now: now)
                        }
                        let posted = try insert(outgoing)
                        if posted.isNew { stored.append(posted.message.id) }
                        results.append(.success(posted))
                    } catch let refusal as MessengerError {
                        results.append(.failure(refusal))
                    }
                }
                try indexForSearch(stored)
            }
        } catch {
            return batch.map { _ in .failure(error) }
        }
        return results
    }

    /// From this many sends, `post(_:sendLimit:)` draws the batch's tokens at once.
    static let batchDrawThreshold = 16

    /// Takes a token from the sender's send bucket (no-op when the limit is off), or throws
    /// the refusal; inside the caller's transaction, before anything of the message is written.
    private func drawSendToken(for outgoing: OutgoingMessage, _ sendLimit: RateLimit?, now: Double) throws {
        guard let sendLimit else { return }
        if let refusal = try drawRateToken(sendLimit, .send, key: String(outgoing.senderID), now: now) {
            throw MessengerError.rateLimited(refusal)
        }
    }

    /// Checks and inserts one message inside the caller's transaction. Every refusal
    /// (`MessengerError`) is thrown before the first write. The caller indexes the new
    /// message for search (`indexForSearch`) once the transaction's last insert is done.
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
        try refuseIfBlocked(senderID: outgoing.senderID, chatID: outgoing.chatID)
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
        if let replyToID = draft.replyToID {
            let sameChat = try database.statement("""
                SELECT 1 FROM messages WHERE id = ? AND chat_id = ? AND deleted_at IS NULL
                """).first([.integer(replyToID), .integer(outgoing.chatID)]) { _ in true } ?? false
            guard sameChat else {
                throw MessengerError.invalid("reply_to_id \(replyToID) is not a message of chat \(outgoing.chatID)")
            }
        }
        let createdAt = StoredTime.now()
        let inserted = try database.insert("""
            INSERT INTO messages (chat_id, sender_id, content, nonce, reply_to_id, created_at) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (sender_id, nonce) WHERE nonce IS NOT NULL DO NOTHING
            """, [.integer(outgoing.chatID), .integer(outgoing.senderID), SQLValue(draft.content),
                  SQLValue(draft.nonce), SQLValue(draft.replyToID), .text(createdAt)], returning: "id")
        guard let id = inserted else {
            // The sender used this nonce before: that message is the answer, stored once.
            guard let nonce = draft.nonce,
                  let existingID = try database.statement("SELECT id FROM messages WHERE sender_id = ? AND nonce = ?")
                      .first([.integer(outgoing.senderID), .text(nonce)], { $0.int(0) })
            else { throw StorageError(code: 0, message: "insert stored no row") }
            guard let existing = try message(id: existingID) else {
                throw MessengerError.invalid("nonce \(nonce) was used by a message that has since been deleted")
            }
            return PostedMessage(message: existing, isNew: false, seq: nil)
        }
        // Your own send is read by you: it moves your marker.
        try database.statement("UPDATE chat_members SET last_read_id = ?1 WHERE chat_id = ?2 AND user_id = ?3")
            .run([.integer(id), .integer(outgoing.chatID), .integer(outgoing.senderID)])
        let link = try database.statement("INSERT INTO message_files (message_id, position, file_id) VALUES (?, ?, ?)")
        for (position, file) in files.enumerated() {
            try link.run([.integer(id), .integer(Int64(position)), .integer(file.id)])
        }
        let seq = try appendEvent(.message, .chat(outgoing.chatID), messageID: id)
        let message = Message(id: id, chatID: outgoing.chatID, senderID: outgoing.senderID, content: draft.content,
                              timestamp: createdAt, files: files, replyToID: draft.replyToID)
        return PostedMessage(message: message, isNew: true, seq: seq)
    }

    private static func describe(_ reference: MessageDraft.FileReference) -> String {
        switch reference {
        case .storedName(let name): "file \(StoredFile.urlPrefix)\(name)"
        case .id(let id): "file \(id)"
        }
    }
}
