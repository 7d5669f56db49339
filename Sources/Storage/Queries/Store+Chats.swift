import Domain

extension Store {
    /// Chat columns plus the member ids as `group_concat` text.
    static let chatSelect = """
        SELECT c.id, c.name, c.chat_type, c.created_at,
               (SELECT group_concat(user_id) FROM chat_members WHERE chat_id = c.id)
        FROM chats c
        """

    static func chat(_ row: Row) -> Chat {
        let participants = (row.optionalString(4) ?? "").split(separator: ",").compactMap { Int64($0) }.sorted()
        return Chat(id: row.int(0), name: row.optionalString(1), kind: Chat.Kind(rawValue: row.string(2)) ?? .group,
                    createdAt: row.string(3), participants: participants)
    }

    public func chat(id: Int64) throws -> Chat? {
        try connection.statement(Self.chatSelect + " WHERE c.id = ?").first([.integer(id)], Self.chat)
    }

    /// Every chat `userID` belongs to, oldest first.
    public func chats(forUser userID: Int64) throws -> [Chat] {
        try connection.statement(Self.chatSelect + """
             JOIN chat_members m ON m.chat_id = c.id WHERE m.user_id = ? ORDER BY c.id
            """).rows([.integer(userID)], Self.chat)
    }

    /// Chats created after `chatID`, oldest first: how the relay learns of new chats even
    /// when a notification was lost.
    public func chats(after chatID: Int64, limit: Int) throws -> [Chat] {
        try connection.statement(Self.chatSelect + " WHERE c.id > ? ORDER BY c.id LIMIT ?")
            .rows([.integer(chatID), .integer(Int64(limit))], Self.chat)
    }

    public func latestChatID() throws -> Int64 {
        try connection.statement("SELECT coalesce(max(id), 0) FROM chats").first { $0.int(0) } ?? 0
    }

    public func isMember(chatID: Int64, userID: Int64) throws -> Bool {
        try connection.statement("SELECT 1 FROM chat_members WHERE chat_id = ? AND user_id = ?")
            .first([.integer(chatID), .integer(userID)]) { _ in true } ?? false
    }

    public func members(chatID: Int64) throws -> [Int64] {
        try connection.statement("SELECT user_id FROM chat_members WHERE chat_id = ? ORDER BY user_id")
            .rows([.integer(chatID)]) { $0.int(0) }
    }

    /// The chat `userID` may read: 404 if it does not exist, 403 if they are not a member.
    public func accessibleChat(id: Int64, userID: Int64) throws -> Chat {
        guard let chat = try chat(id: id) else { throw MessengerError.notFound("chat \(id) not found") }
        guard chat.participants.contains(userID) else {
            throw MessengerError.forbidden("you are not a member of chat \(id)")
        }
        return chat
    }

    /// The direct chat between two users, if they have one.
    public func directChatID(between userID: Int64, and peerID: Int64) throws -> Int64? {
        try connection.statement("""
            SELECT id FROM chats WHERE chat_type = 'direct' AND direct_low = ? AND direct_high = ?
            """).first([.integer(min(userID, peerID)), .integer(max(userID, peerID))]) { $0.int(0) }
    }

    /// The direct chat between `userID` and `peerID`, created if they have none. A chat with
    /// yourself has one member. Unique per pair: the write lock serialises callers, and the
    /// database's unique index on the ordered pair backs that up.
    public func initiateDirectChat(userID: Int64, peerID: Int64) throws -> InitiatedChat {
        if let existing = try directChatID(between: userID, and: peerID) {
            return InitiatedChat(chatID: existing, created: false)
        }
        return try connection.write {
            if let existing = try directChatID(between: userID, and: peerID) {
                return InitiatedChat(chatID: existing, created: false)
            }
            guard try user(id: peerID) != nil else { throw MessengerError.notFound("user \(peerID) not found") }
            try connection.statement("""
                INSERT INTO chats (chat_type, creator_id, direct_low, direct_high) VALUES ('direct', ?, ?, ?)
                """).run([.integer(userID), .integer(min(userID, peerID)), .integer(max(userID, peerID))])
            let chatID = connection.lastInsertRowID
            let addMember = try connection.statement("INSERT INTO chat_members (chat_id, user_id) VALUES (?, ?)")
            try addMember.run([.integer(chatID), .integer(userID)])
            if peerID != userID { try addMember.run([.integer(chatID), .integer(peerID)]) }
            return InitiatedChat(chatID: chatID, created: true)
        }
    }

    /// A new group chat with `creatorID` and `participants` as members.
    public func createGroup(creatorID: Int64, name: String, participants: [Int64]) throws -> Chat {
        let members = Array(Set(participants + [creatorID])).sorted()
        let list = "[" + members.map(String.init).joined(separator: ",") + "]"
        return try connection.write {
            let known = try connection.statement("SELECT count(*) FROM users WHERE id IN (SELECT value FROM json_each(?))")
                .first([.text(list)]) { $0.int(0) } ?? 0
            guard known == members.count else {
                let existing = Set(try connection.statement("SELECT id FROM users WHERE id IN (SELECT value FROM json_each(?))")
                    .rows([.text(list)]) { $0.int(0) })
                let missing = members.filter { !existing.contains($0) }.prefix(5).map(String.init).joined(separator: ", ")
                throw MessengerError.invalid("unknown participant ids: \(missing)")
            }
            try connection.statement("INSERT INTO chats (chat_type, name, creator_id) VALUES ('group', ?, ?)")
                .run([.text(name), .integer(creatorID)])
            let chatID = connection.lastInsertRowID
            try connection.statement("INSERT INTO chat_members (chat_id, user_id) SELECT ?, value FROM json_each(?)")
                .run([.integer(chatID), .text(list)])
            guard let chat = try chat(id: chatID) else { throw StorageError(code: 0, message: "chat vanished after insert") }
            return chat
        }
    }
}
