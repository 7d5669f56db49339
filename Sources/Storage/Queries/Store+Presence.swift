import Domain

/// Who is online and when each user was last seen, as the relays record it.
///
/// Each relay records its own share (`presence_relays`: which relays hold a socket of whom);
/// a user is online while any relay holds one.
extension Store {
    /// Records each user's new state on `relay` (whether it now holds a socket of theirs) and
    /// returns their presence across all relays, and whether that changed; `last_seen` becomes
    /// now for every one of them (a user going online is seen now, one going offline was last
    /// seen now).
    public func recordPresence(_ changes: [(userID: Int64, online: Bool)],
                               relay: Int = 1) throws -> [(presence: Presence, changed: Bool)] {
        guard !changes.isEmpty else { return [] }
        let now = StoredTime.now()
        return try database.write {
            let before = try database.statement("SELECT online FROM presence WHERE user_id = ?")
            let join = try database.statement("INSERT INTO presence_relays (user_id, relay) VALUES (?, ?) ON CONFLICT DO NOTHING")
            let leave = try database.statement("DELETE FROM presence_relays WHERE user_id = ? AND relay = ?")
            let upsert = try database.statement("""
                INSERT INTO presence (user_id, online, last_seen)
                VALUES (?1, CASE WHEN EXISTS (SELECT 1 FROM presence_relays WHERE user_id = ?1) THEN 1 ELSE 0 END, ?2)
                ON CONFLICT (user_id) DO UPDATE SET online = excluded.online, last_seen = excluded.last_seen
                RETURNING online
                """)
            var recorded: [(presence: Presence, changed: Bool)] = []
            for change in changes {
                let wasOnline = try before.rows([.integer(change.userID)]) { $0.int(0) == 1 }.first ?? false
                try (change.online ? join : leave).run([.integer(change.userID), .integer(Int64(relay))])
                let isOnline = try upsert.rows([.integer(change.userID), .text(now)]) { $0.int(0) == 1 }.first ?? false
                recorded.append((Presence(userID: change.userID, online: isOnline, lastSeen: now), isOnline != wasOnline))
            }
            return recorded
        }
    }

    /// At `relay`'s start: nobody is connected to it, so whoever was online through it alone
    /// was last seen now. Instance 1 also takes back the shares of relays beyond
    /// `relayInstances` (a deployment that shrank).
    public func resetPresence(relay: Int = 1, relayInstances: Int = 1) throws {
        try database.write {
            try database.statement("DELETE FROM presence_relays WHERE relay = ?1 OR (?1 = 1 AND relay > ?2)")
                .run([.integer(Int64(relay)), .integer(Int64(relayInstances))])
            try database.statement("""
                UPDATE presence SET online = 0, last_seen = ?
                WHERE online = 1 AND NOT EXISTS (SELECT 1 FROM presence_relays r WHERE r.user_id = presence.user_id)
                """).run([.text(StoredTime.now())])
        }
    }

    /// The stored presence of `userID` (offline with `last_seen` null if never seen).
    public func presence(of userID: Int64) throws -> Presence {
        let rows = try database.statement("SELECT online, last_seen FROM presence WHERE user_id = ?")
            .rows([.integer(userID)]) { Presence(userID: userID, online: $0.int(0) == 1, lastSeen: $0.optionalString(1)) }
        return rows.first ?? Presence(userID: userID, online: false, lastSeen: nil)
    }

    /// The presence of those of `userIDs` who share a chat with `viewerID` (or are the viewer);
    /// the others are left out. A user never seen is offline with `last_seen` null.
    public func presence(of userIDs: [Int64], visibleTo viewerID: Int64) throws -> [Presence] {
        let list = SQLValue.idList(userIDs)
        return try database.statement(Self.presenceVisible).rows([list, .integer(viewerID)]) {
                Presence(userID: $0.int(0), online: $0.int(1) == 1, lastSeen: $0.optionalString(2))
            }
    }
}

extension Store {
    private static let presenceVisible: SQL = """
        SELECT u.value, coalesce(p.online, 0), p.last_seen FROM \(.idRows("?1")) u
        LEFT JOIN presence p ON p.user_id = u.value
        WHERE u.value = ?2 OR EXISTS (
            SELECT 1 FROM chat_members mine JOIN chat_members other ON other.chat_id = mine.chat_id
            WHERE mine.user_id = ?2 AND other.user_id = u.value)
        ORDER BY u.key
        """
}

/// `{user_id, online, last_seen}`: the PRESENCE frame's `d` and `GET /presence`'s entries.
public struct Presence: Sendable, Equatable, JSONEncodable {
    public let userID: Int64
    public let online: Bool
    public let lastSeen: String?

    public init(userID: Int64, online: Bool, lastSeen: String?) {
        self.userID = userID
        self.online = online
        self.lastSeen = lastSeen
    }

    public func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("user_id", userID)
            json.key("online")
            json.bool(online)
            json.field("last_seen", lastSeen)
        }
    }
}
