import CSQLite
import Domain

/// Full-text search over the messages of a user's chats (`messages_fts`, migrations 004
/// and 007).
extension Store {
    public static let defaultSearchLimit = 20
    public static let maxSearchLimit = 100
    /// How many matches, newest first, the first pass reads before it gives up on finding a
    /// page among them (see `search`). Each costs an index step and a message lookup, about
    /// 2 µs.
    static let searchScanRows = 4_000

    /// Messages matching `query` in the chats `userID` is a member of now (or in `chatID`
    /// alone, which they must be a member of), newest first, with ids below `beforeID`.
    ///
    /// Two passes, because neither alone is fast for everyone (measured at 10 M messages,
    /// BENCHMARKS.md "Data at scale"). The first reads the matches of the words newest first
    /// and keeps those in the caller's chats: a page when those chats hold a fair share of
    /// the matches (the usual case, and every rare word). If `searchScanRows` matches gave no
    /// full page, the second asks the index for the words *and* the chats' tokens
    /// (`chat : (c1 OR c2 …)`), which costs a term lookup per chat but never reads matches
    /// of other chats.
    public func search(_ query: SearchQuery, userID: Int64, chatID: Int64? = nil, beforeID: Int64? = nil,
                       limit: Int = Store.defaultSearchLimit) throws -> SearchPage {
        try database.read {
            let chats: [Int64]
            if let chatID {
                chats = [try accessibleChat(id: chatID, userID: userID).id]
            } else {
                chats = try database.statement("SELECT chat_id FROM chat_members WHERE user_id = ?")
                    .rows([.integer(userID)]) { $0.int(0) }
            }
            guard !chats.isEmpty else { return SearchPage(messages: [], nextBeforeID: nil) }
            // One more than the page: whether there is a next page, without a count.
            let wanted = limit + 1
            var ids: [Int64] = []
            do {
                let members = Set(chats)
                var cursor = beforeID ?? Int64.max
                var scanned = 0
                try database.statement(Self.searchScan)
                    .scan(searchValues(query, chats: nil, below: cursor, limit: Self.searchScanRows)) { row in
                        cursor = row.int(0)
                        scanned += 1
                        if members.contains(row.int(1)) { ids.append(cursor) }
                        return ids.count < wanted
                    }
                if ids.count < wanted && scanned == Self.searchScanRows {
                    ids += try database.statement(Self.searchInChats)
                        .rows(searchValues(query, chats: chats, below: cursor, limit: wanted - ids.count)) { $0.int(0) }
                }
            } catch let error as StorageError where error.primaryCode == SQLITE_ERROR {
                // The expression is built from parsed terms, so the index should never refuse
                // it; if it does, the query is still the client's to change, not a server fault.
                throw MessengerError.invalid("q cannot be searched; use words, prefixes (hel*) and \"quoted phrases\"")
            }
            let page = ids.prefix(limit)
            // Rows of the index are live messages (the triggers remove the rest), so every id
            // is found; read in one go, then turned newest first.
            let messages = try self.messages(ids: Array(page)).reversed()
            return SearchPage(messages: Array(messages), nextBeforeID: ids.count > limit ? page.last : nil)
        }
    }

    /// The first pass: the matches of the words alone, newest first, with their chats. The
    /// second: the matches in the caller's chats. On SQLite, FTS5's `messages_fts` (the chats
    /// as `c<id>` tokens of its `chat` column, in the MATCH expression); on PostgreSQL, the
    /// `tsvector` table of migration 004, whose GIN index holds the chat id beside the words
    /// (migrations/postgres/README.md, "Search").
    private static let searchScan = SQL(sqlite: """
        SELECT f.rowid, m.chat_id FROM messages_fts f JOIN messages m ON m.id = f.rowid
        WHERE messages_fts MATCH ? AND f.rowid < ? ORDER BY f.rowid DESC LIMIT ?
        """, postgres: """
        SELECT message_id, chat_id FROM messages_fts
        WHERE body @@ \(postgresSearchQuery) AND message_id < ?3 ORDER BY message_id DESC LIMIT ?4
        """)
    private static let searchInChats = SQL(sqlite: """
        SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? AND rowid < ? ORDER BY rowid DESC LIMIT ?
        """, postgres: """
        SELECT message_id FROM messages_fts
        WHERE chat_id = ANY(ARRAY\(SQL.Fragment.ids("?5").postgres)) AND body @@ \(postgresSearchQuery)
          AND message_id < ?3 ORDER BY message_id DESC LIMIT ?4
        """)
    /// The terms (`?1`, a JSON array of their texts) and whether each is a prefix (`?2`).
    private static let postgresSearchQuery = """
        messenger_search_query(ARRAY(SELECT json_array_elements_text(CAST(?1 AS json))),
                               ARRAY(SELECT CAST(value AS BOOLEAN) FROM json_array_elements_text(CAST(?2 AS json)) AS value))
        """

    /// The values of `searchScan` and `searchInChats` (with `chats`) in this dialect.
    private func searchValues(_ query: SearchQuery, chats: [Int64]?, below cursor: Int64, limit: Int) -> [SQLValue] {
        let page: [SQLValue] = [.integer(cursor), .integer(Int64(limit))]
        switch database.dialect {
        case .sqlite:
            return [.text(Self.matchExpression(query, chats: chats))] + page
        case .postgres:
            var terms = JSONWriter(capacity: 64)
            terms.array(query.terms.map { JSON.string($0.text) })
            var prefixes = JSONWriter(capacity: 16)
            prefixes.array(query.terms.map { JSON.bool($0.isPrefix) })
            return [.text(String(decoding: terms.bytes, as: UTF8.self)), .text(String(decoding: prefixes.bytes, as: UTF8.self))]
                + page + (chats.map { [SQLValue.idList($0)] } ?? [])
        }
    }

    /// The FTS5 MATCH expression for `query`, in `chats` if given: every term a quoted string
    /// on the `body` column (so that nothing a user types is read as FTS5 syntax), and the
    /// chats as their `chat` tokens.
    static func matchExpression(_ query: SearchQuery, chats: [Int64]?) -> String {
        var parts: [String] = []
        if let chats {
            parts.append("chat : (" + chats.map { "c\($0)" }.joined(separator: " OR ") + ")")
        }
        for term in query.terms {
            var part = "body : \""
            for character in term.text {
                part.append(character == "\"" ? "\"\"" : String(character))
            }
            part += term.isPrefix ? "\" *" : "\""
            parts.append(part)
        }
        return parts.joined(separator: " AND ")
    }

    /// Adds new messages to the search index, inside the caller's transaction and as its last
    /// statement: FTS5 writes out the terms it holds at every later statement savepoint, so
    /// indexing each send as it is inserted made a segment per message of a group commit
    /// (migration 007). Messages without content (files only) are not indexed.
    func indexForSearch(_ ids: [Int64]) throws {
        guard !ids.isEmpty else { return }
        try database.statement(Self.indexedForSearch).run([SQLValue.idList(ids)])
    }

    private static let indexedForSearch = SQL(sqlite: """
        INSERT INTO messages_fts (rowid, body, chat)
        SELECT id, content, 'c' || chat_id FROM messages
        WHERE id IN (SELECT value FROM json_each(?)) AND content IS NOT NULL AND deleted_at IS NULL
        """, postgres: "SELECT messenger_index_for_search(ARRAY\(SQL.Fragment.ids("?").postgres))")
}
