import Domain

extension Store {
    /// Chat columns plus the member ids as one text (`Row.integers`).
    static let chatSelect: SQL = """
        SELECT c.id, c.name, c.chat_type, c.created_at,
               (SELECT \(.joinedIDs("user_id")) FROM chat_members WHERE chat_id = c.id)
        FROM chats c
        """

    private static let chatByID: SQL = "\(chatSelect) WHERE c.id = ?"
    private static let chatsOfUser: SQL = "\(chatSelect) JOIN chat_members m ON m.chat_id = c.id WHERE m.user_id = ? ORDER BY c.id"

    static func chat(_ row: Row) -> Chat {
        let participants = row.integers(4).sorted()
        return Chat(id: row.int(0), name: row.optionalString(1), kind: Chat.Kind(rawValue: row.string(2)) ?? .group,
                    createdAt: row.string(3), participants: participants)
    }

    public func chat(id: Int64) throws -> Chat? {
        try database.statement(Self.chatByID).first([.integer(id)], Self.chat)
    }

    /// Every chat `userID` belongs to, oldest first.
    public func chats(forUser userID: Int64) throws -> [Chat] {
        try database.statement(Self.chatsOfUser).rows([.integer(userID)], Self.chat)
    }

    public func isMember(chatID: Int64, userID: Int64) throws -> Bool {
        try database.statement("SELECT 1 FROM chat_members WHERE chat_id = ? AND user_id = ?")
            .first([.integer(chatID), .integer(userID)]) { _ in true } ?? false
    }

    public func members(chatID: Int64) throws -> [Int64] {
        try database.statement("SELECT user_id FROM chat_members WHERE chat_id = ? ORDER BY user_id")
            .rows([.integer(chatID)]) { $0.int(0) }
    }

    /// A chat's members with the seq from which each sees its events.
    public func memberships(chatID: Int64) throws -> [Membership] {
        try database.statement("SELECT user_id, joined_seq FROM chat_members WHERE chat_id = ? ORDER BY user_id")
            .rows([.integer(chatID)]) { Membership(userID: $0.int(0), joinedSeq: $0.int(1)) }
    }

    /// `userID` and everyone who shares a chat with them: who sees their profile change.
    public func contacts(of userID: Int64) throws -> [Int64] {
        try database.statement("""
            SELECT CAST(?1 AS BIGINT) UNION
            SELECT other.user_id FROM chat_members mine JOIN chat_members other ON other.chat_id = mine.chat_id
            WHERE mine.user_id = ?1
            """).rows([.integer(userID)]) { $0.int(0) }
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
        try database.statement("""
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
        return try database.write {
            if let existing = try directChatID(between: userID, and: peerID) {
                return InitiatedChat(chatID: existing, created: false)
            }
            guard try user(id: peerID) != nil else { throw MessengerError.notFound("user \(peerID) not found") }
            if try hasBlocked(peerID, userID) {
                throw MessengerError.forbidden("blocked: this user does not accept new chats from you")
            }
            guard let chatID = try database.insert("""
                INSERT INTO chats (chat_type, creator_id, direct_low, direct_high) VALUES ('direct', ?, ?, ?)
                """, [.integer(userID), .integer(min(userID, peerID)), .integer(max(userID, peerID))], returning: "id")
            else { throw StorageError(code: 0, message: "chat insert stored no row") }
            let seq = try appendEvent(.chat, .chat(chatID))
            let addMember = try database.statement("INSERT INTO chat_members (chat_id, user_id, joined_seq) VALUES (?, ?, ?)")
            try addMember.run([.integer(chatID), .integer(userID), .integer(seq)])
            if peerID != userID { try addMember.run([.integer(chatID), .integer(peerID), .integer(seq)]) }
            return InitiatedChat(chatID: chatID, created: true)
        }
    }

    /// A new group chat with `creatorID` and `participants` as members.
    public func createGroup(creatorID: Int64, name: String, participants: [Int64]) throws -> Chat {
        let members = Array(Set(participants + [creatorID])).sorted()
        let list = SQLValue.idList(members)
        return try database.write {
            let known = try database.statement(Self.usersCounted).first([list]) { $0.int(0) } ?? 0
            guard known == members.count else {
                let existing = Set(try database.statement(Self.usersFound).rows([list]) { $0.int(0) })
                let missing = members.filter { !existing.contains($0) }.prefix(5).map(String.init).joined(separator: ", ")
                throw MessengerError.invalid("unknown participant ids: \(missing)")
            }
            guard let chatID = try database.insert("INSERT INTO chats (chat_type, name, creator_id) VALUES ('group', ?, ?)",
                                                   [.text(name), .integer(creatorID)], returning: "id")
            else { throw StorageError(code: 0, message: "chat insert stored no row") }
            let seq = try appendEvent(.chat, .chat(chatID))
            try database.statement(Self.groupMembersInserted).run([.integer(chatID), .integer(seq), .integer(creatorID), list])
            guard let chat = try chat(id: chatID) else { throw StorageError(code: 0, message: "chat vanished after insert") }
            return chat
        }
    }

    /// How many of the ids of a `SQLValue.idList` are users, and which.
    static let usersCounted: SQL = "SELECT count(*) FROM users WHERE id IN \(.ids("?"))"
    static let usersFound: SQL = "SELECT id FROM users WHERE id IN \(.ids("?"))"

    private static let groupMembersInserted: SQL = """
        INSERT INTO chat_members (chat_id, user_id, joined_seq, role)
        SELECT CAST(?1 AS BIGINT), ids.value, CAST(?2 AS BIGINT), CASE WHEN ids.value = ?3 THEN 'owner' ELSE 'member' END
        FROM \(.idRows("?4")) ids
        """

    // MARK: Protocol-2 chats

    /// `chat` as `userID` sees it: last message, read marker, unread count and role. The
    /// caller has checked that they are a member.
    public func chatView(_ chat: Chat, for userID: Int64) throws -> ChatView {
        try chatViewRows(userID: userID, where: "c.id = ?2", [.integer(chat.id)], limit: 1).first
            ?? ChatView(chat: chat, lastMessage: try lastMessage(chatID: chat.id), unreadCount: 0, lastReadID: 0, role: .member)
    }

    /// `userID`'s chats as they see them, newest activity (last message, or creation) first:
    /// at most `limit` (nil: all), after the chat `beforeChatID` in that order when given. One
    /// query for the chats with their markers, counts and order, one for the last messages;
    /// the work beyond ordering the memberships is the page's, not every chat's.
    public func chatViews(forUser userID: Int64, limit: Int? = nil, beforeChatID: Int64? = nil) throws -> [ChatView] {
        try database.read {
            guard let beforeChatID else { return try chatViewRows(userID: userID, where: "true", [], limit: limit) }
            guard try chat(id: beforeChatID) != nil else {
                throw MessengerError.invalid("before_chat_id: there is no chat \(beforeChatID)")
            }
            return try chatViewRows(userID: userID, where: """
                (c.activity_seq, c.id) < (SELECT b.activity_seq, b.id FROM chats b WHERE b.id = ?2)
                """, [.integer(beforeChatID)], limit: limit)
        }
    }

    /// The views of `userID`'s chats that match `condition`, newest activity first, at most
    /// `limit`: the chat whose newest live message (or, without one, whose creation) has the
    /// larger event seq first, then the larger chat id. The order reads one integer from
    /// each chat's row (migration 003 keeps it there, with the id of its last live message);
    /// with a `limit`, only the page's chats have their members, unread messages and last
    /// message read.
    ///
    /// One statement reads each chat with its last message; files and reactions are read
    /// after it only for the last messages that have any. The rows are put in order here:
    /// a second ORDER BY over the finished rows cost a third of the whole list's query, and
    /// reading the last messages by id in a second query cost as much as all the rest.
    private func chatViewRows(userID: Int64, where condition: String, _ values: [SQLValue], limit: Int?) throws -> [ChatView] {
        let chats = if let limit {
            """
            (SELECT c.id, c.activity_seq FROM chat_members m JOIN chats c ON c.id = m.chat_id
             WHERE m.user_id = ?1 AND \(condition) ORDER BY c.activity_seq DESC, c.id DESC LIMIT \(limit)) page
            JOIN chats c ON c.id = page.id JOIN chat_members m ON m.chat_id = page.id AND m.user_id = ?1
            """
        } else {
            "chat_members m JOIN chats c ON c.id = m.chat_id AND m.user_id = ?1 AND \(condition)"
        }
        let query: SQL = """
            SELECT c.id, c.name, c.chat_type, c.created_at,
                   (SELECT \(.joinedIDs("user_id")) FROM chat_members WHERE chat_id = c.id),
                   m.last_read_id, m.role,
                   (SELECT count(*) FROM messages x
                    WHERE x.chat_id = c.id AND x.id > m.last_read_id AND x.sender_id <> ?1 AND x.deleted_at IS NULL),
                   c.activity_seq,
                   l.id, l.sender_id, l.content, l.created_at, l.reply_to_id, l.edited_at,
                   EXISTS (SELECT 1 FROM message_files WHERE message_id = l.id)
                   OR EXISTS (SELECT 1 FROM reactions WHERE message_id = l.id)
            FROM \(chats) LEFT JOIN messages l ON l.id = c.last_message_id AND l.deleted_at IS NULL
            """
        let rows = try database.statement(query).rows([.integer(userID)] + values) { row in
                let last = row.optionalInt(9).map { id in
                    Message(id: id, chatID: row.int(0), senderID: row.int(10), content: row.optionalString(11),
                            timestamp: row.string(12), files: [], replyToID: row.optionalInt(13),
                            editedAt: row.optionalString(14))
                }
                return (view: ChatView(chat: Self.chat(row), lastMessage: last, unreadCount: row.int(7),
                                       lastReadID: row.int(5), role: ChatRole(rawValue: row.string(6)) ?? .member),
                        activitySeq: row.int(8), lastHasMore: row.int(15) != 0)
            }
        // Sorted as indexes: a chat's view is a few hundred bytes, moved many times by a sort.
        let order = rows.indices.sorted { (rows[$0].activitySeq, rows[$0].view.chat.id) > (rows[$1].activitySeq, rows[$1].view.chat.id) }
        var views = order.map { rows[$0].view }
        let fuller = order.indices.filter { rows[order[$0]].lastHasMore }
        guard !fuller.isEmpty else { return views }
        var lastMessages = fuller.compactMap { views[$0].lastMessage }
        try attachFiles(to: &lastMessages)
        try attachReactions(to: &lastMessages)
        for (index, message) in zip(fuller, lastMessages) {
            views[index].lastMessage = message
        }
        return views
    }
}

/// One member of a chat, and the seq of the event that made them one.
public struct Membership: Sendable, Equatable {
    public let userID: Int64
    public let joinedSeq: Int64

    public init(userID: Int64, joinedSeq: Int64) {
        self.userID = userID
        self.joinedSeq = joinedSeq
    }
}
