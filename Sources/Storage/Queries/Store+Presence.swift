import Domain

/// Who is online and when each user was last seen, as the relay records it.
extension Store {
    /// Records each user's new state; `last_seen` becomes now for every one of them (a user
    /// going online is seen now, one going offline was last seen now).
    public func recordPresence(_ changes: [(userID: Int64, online: Bool)]) throws -> [Presence] {
        guard !changes.isEmpty else { return [] }
        let now = StoredTime.now()
        return try connection.write {
            let upsert = try connection.statement("""
                INSERT INTO presence (user_id, online, last_seen) VALUES (?, ?, ?)
                ON CONFLICT (user_id) DO UPDATE SET online = excluded.online, last_seen = excluded.last_seen
                """)
            for change in changes {
                try upsert.run([.integer(change.userID), .integer(change.online ? 1 : 0), .text(now)])
            }
            return changes.map { Presence(userID: $0.userID, online: $0.online, lastSeen: now) }
        }
    }

    /// At the relay's start: nobody is connected to it, so whoever was online was last seen now.
    public func resetPresence() throws {
        try connection.write {
            try connection.statement("UPDATE presence SET online = 0, last_seen = ? WHERE online = 1")
                .run([.text(StoredTime.now())])
        }
    }

    /// The presence of those of `userIDs` who share a chat with `viewerID` (or are the viewer);
    /// the others are left out. A user never seen is offline with `last_seen` null.
    public func presence(of userIDs: [Int64], visibleTo viewerID: Int64) throws -> [Presence] {
        let list = SQLValue.idList(userIDs)
        return try connection.statement("""
            SELECT u.value, coalesce(p.online, 0), p.last_seen FROM json_each(?1) u
            LEFT JOIN presence p ON p.user_id = u.value
            WHERE u.value = ?2 OR EXISTS (
                SELECT 1 FROM chat_members mine JOIN chat_members other ON other.chat_id = mine.chat_id
                WHERE mine.user_id = ?2 AND other.user_id = u.value)
            ORDER BY u.key
            """).rows([list, .integer(viewerID)]) {
                Presence(userID: $0.int(0), online: $0.int(1) == 1, lastSeen: $0.optionalString(2))
            }
    }
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
