import Domain
import Foundation

/// The event stream (DESIGN, "One ordered event stream"): appended in the transaction of each
/// change, read back in `seq` order by the relay and by resuming clients, pruned by age.
extension Store {
    /// The most seqs one visibility read spans. Reads for one user go window by window, so
    /// each query reads at most this many of that user's events, however far back it starts.
    public static let eventWindow: Int64 = 2_000

    private static let eventColumns = "seq, op, audience, chat_id, user_id, message_id, data"

    /// Appends an event inside the caller's write transaction; returns its seq.
    @discardableResult
    func appendEvent(_ op: EventOp, _ audience: Audience, messageID: Int64? = nil, data: [UInt8]? = nil,
                     chatID: Int64? = nil) throws -> Int64 {
        let subject: (chat: Int64?, user: Int64?)
        switch audience {
        case .chat(let id): subject = (id, nil)
        case .user(let id), .contacts(let id): subject = (chatID, id)
        }
        let values: [SQLValue] = [.text(op.rawValue), .text(audience.column), SQLValue(subject.chat), SQLValue(subject.user),
                                  SQLValue(messageID), data.map { .text(String(decoding: $0, as: UTF8.self)) } ?? .null]
        guard let seq = try database.insert("""
            INSERT INTO events (op, audience, chat_id, user_id, message_id, data) VALUES (?, ?, ?, ?, ?, ?)
            """, values, returning: "seq")
        else { throw StorageError(code: 0, message: "event insert stored no row") }
        // The relays on PostgreSQL hear of it at the commit (on SQLite, the writer's process
        // sends them a datagram).
        if case .postgres(let connection) = database { connection.notifyAtCommit(PostgresListener.eventsChannel) }
        return seq
    }

    /// The head of the stream: the seq of the newest event ever appended (0 before the first).
    /// Pruning never lowers it. SQLite keeps it for AUTOINCREMENT; on PostgreSQL it is the
    /// counter the events' insert trigger draws from, as committed in the reader's snapshot
    /// (migrations/postgres/README.md, "The event order").
    public func latestSeq() throws -> Int64 {
        try database.statement(Self.latestSeqQuery).first { $0.int(0) } ?? 0
    }

    private static let latestSeqQuery = SQL(sqlite: "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
                                            postgres: "SELECT seq FROM event_counter")

    /// The newest seq pruning has deleted: a client resuming from below it may have missed
    /// events.
    public func prunedThrough() throws -> Int64 {
        try database.statement("SELECT pruned_through FROM event_log WHERE id = 1").first { $0.int(0) } ?? 0
    }

    /// Up to `limit` events after `seq`, for any audience, ascending: what the relay fans out.
    public func events(after seq: Int64, limit: Int) throws -> EventPage {
        try database.read {
            let rows = try database.statement("SELECT \(Self.eventColumns) FROM events WHERE seq > ? ORDER BY seq LIMIT ?")
                .rows([.integer(seq), .integer(Int64(limit))], Self.eventRow)
            return EventPage(events: try render(rows), through: rows.last?.seq ?? seq, isLast: rows.count < limit)
        }
    }

    /// The events in `after+1 ... through` that `userID` may see, ascending. `through - after`
    /// is at most `eventWindow`; callers go window by window.
    ///
    /// Three index reads, one per audience: the user's chats (from when they joined), events
    /// addressed to them, and profile changes of themselves and everyone they share a chat with.
    public func events(visibleTo userID: Int64, after: Int64, through: Int64) throws -> [Event] {
        precondition(through - after <= Self.eventWindow, "read the event stream window by window")
        let columns = Self.eventColumns.split(separator: ",").map { "e." + $0.trimmingCharacters(in: .whitespaces) }
            .joined(separator: ", ")
        let rows = try database.statement("""
            SELECT \(columns) FROM chat_members m
            JOIN events e ON e.audience = 'chat' AND e.chat_id = m.chat_id AND e.seq > ?1 AND e.seq <= ?2
            WHERE m.user_id = ?3 AND e.seq >= m.joined_seq
            UNION ALL
            SELECT \(columns) FROM events e
            WHERE e.audience = 'user' AND e.user_id = ?3 AND e.seq > ?1 AND e.seq <= ?2
            UNION ALL
            SELECT \(columns) FROM events e
            WHERE e.audience = 'contacts' AND e.seq > ?1 AND e.seq <= ?2 AND e.user_id IN (
                SELECT CAST(?3 AS BIGINT) UNION
                SELECT other.user_id FROM chat_members mine JOIN chat_members other ON other.chat_id = mine.chat_id
                WHERE mine.user_id = ?3)
            ORDER BY 1
            """).rows([.integer(after), .integer(through), .integer(userID)], Self.eventRow)
        return try render(rows)
    }

    /// Deletes up to `limit` events older than `age` seconds, oldest first, and records how
    /// far it went; returns how many it deleted. Messages are never touched.
    ///
    /// Only the oldest `limit` events are read: the stream is in time order, so when they are
    /// not old nothing later is. (Filtering before the limit, as this once did, read the whole
    /// stream under the write lock whenever nothing was old: seconds at a few million events,
    /// every 10 minutes; found by the soak.)
    public func pruneEvents(olderThan age: Int64, limit: Int) throws -> Int {
        let cutoff = StoredTime.string(secondsSince1970: Int64(time(nil)) - age)
        return try database.write {
            guard let last = try database.statement("""
                SELECT max(seq) FROM (SELECT seq, created_at FROM events ORDER BY seq LIMIT ?) AS oldest
                WHERE created_at < ?
                """).first([.integer(Int64(limit)), .text(cutoff)], { $0.optionalInt(0) }) ?? nil
            else { return 0 }
            let deleted = try database.statement("DELETE FROM events WHERE seq <= ?").run([.integer(last)])
            try database.statement(Self.prunedThroughMoved).run([.integer(last)])
            return deleted
        }
    }

    private static let prunedThroughMoved: SQL =
        "UPDATE event_log SET pruned_through = \(.greatest("pruned_through", "?")) WHERE id = 1"

    // MARK: Rendering

    /// An event row before its entity is read.
    struct EventRow {
        let seq: Int64
        let op: EventOp
        let audience: Audience
        let chatID: Int64?
        let userID: Int64?
        let messageID: Int64?
        let data: String?
    }

    private static func eventRow(_ row: Row) -> EventRow {
        let chatID = row.optionalInt(3)
        let userID = row.optionalInt(4)
        let audience: Audience
        switch row.string(2) {
        case "user": audience = .user(userID ?? 0)
        case "contacts": audience = .contacts(userID ?? 0)
        default: audience = .chat(chatID ?? 0)
        }
        return EventRow(seq: row.int(0), op: EventOp(rawValue: row.string(1)) ?? .message, audience: audience,
                        chatID: chatID, userID: userID, messageID: row.optionalInt(5), data: row.optionalString(6))
    }

    /// Reads the entity each row is about, in one query per kind of entity. An event whose
    /// message was deleted since is left out: the stream shows current state, and the
    /// deletion has an event of its own.
    private func render(_ rows: [EventRow]) throws -> [Event] {
        let messageIDs = rows.filter { $0.data == nil && $0.messageID != nil }.compactMap(\.messageID)
        let messages = Dictionary(try self.messages(ids: messageIDs).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var chats: [Int64: Chat] = [:]
        var users: [Int64: User] = [:]
        var events: [Event] = []
        events.reserveCapacity(rows.count)
        for row in rows {
            let body: EventBody?
            if let data = row.data {
                body = .data(Array(data.utf8))
            } else if let messageID = row.messageID {
                body = messages[messageID].map(EventBody.message)
            } else if row.op == .user, let userID = row.userID {
                if users[userID] == nil { users[userID] = try user(id: userID) }
                body = users[userID].map(EventBody.user)
            } else if let chatID = row.chatID {
                if chats[chatID] == nil { chats[chatID] = try chat(id: chatID) }
                body = chats[chatID].map(EventBody.chat)
            } else {
                body = nil
            }
            if let body { events.append(Event(seq: row.seq, op: row.op, audience: row.audience, body: body)) }
        }
        return events
    }
}

/// A page of the whole stream. `events` may be fewer than the rows read (an event whose
/// message was deleted is left out); `through` is the last seq read, where the next page starts.
public struct EventPage: Sendable {
    public let events: [Event]
    public let through: Int64
    /// Nothing after `through` was committed when the page was read.
    public let isLast: Bool
}
