import CSQLite
import Domain

/// Full-text search over the messages of a user's chats (`messages_fts`, migration 004).
extension Store {
    public static let defaultSearchLimit = 20
    public static let maxSearchLimit = 100

    /// Messages matching `query` in the chats `userID` is a member of now (or in `chatID`
    /// alone, which they must be a member of), newest first, with ids below `beforeID`.
    public func search(_ query: SearchQuery, userID: Int64, chatID: Int64? = nil, beforeID: Int64? = nil,
                       limit: Int = Store.defaultSearchLimit) throws -> SearchPage {
        try connection.read {
            let chats: [Int64]
            if let chatID {
                chats = [try accessibleChat(id: chatID, userID: userID).id]
            } else {
                chats = try connection.statement("SELECT chat_id FROM chat_members WHERE user_id = ?")
                    .rows([.integer(userID)]) { $0.int(0) }
            }
            guard !chats.isEmpty else { return SearchPage(messages: [], nextBeforeID: nil) }
            // One more than the page: whether there is a next page, without a count.
            let ids: [Int64]
            do {
                ids = try connection.statement("""
                    SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? AND rowid < ? ORDER BY rowid DESC LIMIT ?
                    """).rows([.text(Self.matchExpression(query, chats: chats)), .integer(beforeID ?? Int64.max),
                               .integer(Int64(limit + 1))]) { $0.int(0) }
            } catch let error as StorageError where error.primaryCode == SQLITE_ERROR {
                // The expression is built from parsed terms, so FTS5 should never refuse it;
                // if it does, the query is still the client's to change, not a server fault.
                throw MessengerError.invalid("q cannot be searched; use words, prefixes (hel*) and \"quoted phrases\"")
            }
            let page = ids.prefix(limit)
            // Rows of the index are live messages (the triggers remove the rest), so every id
            // is found; read in one go, then turned newest first.
            let messages = try self.messages(ids: Array(page)).reversed()
            return SearchPage(messages: Array(messages), nextBeforeID: ids.count > limit ? page.last : nil)
        }
    }

    /// The FTS5 MATCH expression for `query` in `chats`: every term a quoted string on the
    /// `body` column (so that nothing a user types is read as FTS5 syntax), and the chats as
    /// their `chat` tokens.
    static func matchExpression(_ query: SearchQuery, chats: [Int64]) -> String {
        var expression = "chat : ("
        expression += chats.map { "c\($0)" }.joined(separator: " OR ")
        expression += ")"
        for term in query.terms {
            expression += " AND body : \""
            for character in term.text {
                expression.append(character == "\"" ? "\"\"" : String(character))
            }
            expression += term.isPrefix ? "\" *" : "\""
        }
        return expression
    }
}
