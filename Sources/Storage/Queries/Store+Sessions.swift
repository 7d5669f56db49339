import Domain

/// A login, as `GET /users/me/sessions` lists it.
public struct SessionInfo: Sendable, Equatable, JSONEncodable {
    public let id: Int64
    public let createdAt: String
    /// To within a minute: processes write it at most once a minute per session.
    public let lastUsedAt: String
    public let expiresAt: Int64
    /// Whether this is the session of the token asking.
    public var current: Bool

    public func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("id", id)
            json.field("created_at", createdAt)
            json.field("last_used_at", lastUsedAt)
            json.field("expires_at", StoredTime.string(secondsSince1970: expiresAt))
            json.key("current")
            json.bool(current)
        }
    }
}

/// The state of a session as token checks need it.
public enum SessionState: Sendable, Equatable {
    case active
    case revoked
    /// No such session of this user (a token for another database under the same secret).
    case unknown
}

extension Store {
    /// Starts a session for `userID` whose tokens expire at `expiresAt`; returns its id.
    public func createSession(userID: Int64, expiresAt: Int64) throws -> Int64 {
        try database.write {
            let now = StoredTime.now()
            guard let id = try database.insert("""
                INSERT INTO sessions (user_id, created_at, last_used_at, expires_at) VALUES (?, ?, ?, ?)
                """, [.integer(userID), .text(now), .text(now), .integer(expiresAt)], returning: "id")
            else { throw StorageError(code: 0, message: "session insert stored no row") }
            return id
        }
    }

    public func sessionState(id: Int64, userID: Int64) throws -> SessionState {
        let revoked = try database.statement("SELECT revoked_at IS NOT NULL FROM sessions WHERE id = ? AND user_id = ?")
            .first([.integer(id), .integer(userID)]) { $0.int(0) != 0 }
        switch revoked {
        case nil: return .unknown
        case true?: return .revoked
        case false?: return .active
        }
    }

    /// The user's sessions that are neither revoked nor expired, newest first.
    public func activeSessions(userID: Int64, now: Int64) throws -> [SessionInfo] {
        try database.statement("""
            SELECT id, created_at, last_used_at, expires_at FROM sessions
            WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY id DESC
            """).rows([.integer(userID), .integer(now)]) { row in
                SessionInfo(id: row.int(0), createdAt: row.string(1), lastUsedAt: row.string(2), expiresAt: row.int(3),
                            current: false)
            }
    }

    /// Records that the session was used now.
    public func touchSession(id: Int64) throws {
        try database.write {
            try database.statement("UPDATE sessions SET last_used_at = ? WHERE id = ?").run([.text(StoredTime.now()), .integer(id)])
        }
    }

    /// Revokes `sessionID` if it is the user's; returns the ids revoked (empty if it already was).
    @discardableResult
    public func revokeSession(_ sessionID: Int64, userID: Int64) throws -> [Int64] {
        try database.write { try revoke(userID: userID, only: sessionID, keeping: nil) }
    }

    /// Revokes every session of the user but `keeping` (nil: all); returns the ids revoked.
    @discardableResult
    public func revokeSessions(userID: Int64, keeping: Int64? = nil) throws -> [Int64] {
        try database.write { try revoke(userID: userID, only: nil, keeping: keeping) }
    }

    /// Marks the user's live sessions (`only` that one, or all but `keeping`) revoked under one
    /// new `revoked_seq`, inside the caller's transaction, whose write lock makes the counter
    /// increase in commit order: the watchers rely on that.
    private func revoke(userID: Int64, only: Int64?, keeping: Int64?) throws -> [Int64] {
        let match = "user_id = ?1 AND revoked_at IS NULL AND (CAST(?2 AS BIGINT) IS NULL OR id = ?2) AND id <> ?3"
        let values: [SQLValue] = [.integer(userID), SQLValue(only), .integer(keeping ?? 0)]
        let ids = try database.statement("SELECT id FROM sessions WHERE \(match)").rows(values) { $0.int(0) }
        guard !ids.isEmpty else { return [] }
        let seq = try database.statement("SELECT coalesce(max(revoked_seq), 0) + 1 FROM sessions").first { $0.int(0) } ?? 1
        try database.statement("UPDATE sessions SET revoked_at = ?4, revoked_seq = ?5 WHERE \(match)")
            .run(values + [.text(StoredTime.now()), .integer(seq)])
        return ids
    }

    /// Sessions revoked after `seq` whose tokens have not expired at `now`, and the newest
    /// revocation seq seen.
    public func revocations(after seq: Int64, now: Int64) throws -> (sessions: [(id: Int64, expiresAt: Int64)], through: Int64) {
        var through = seq
        var sessions: [(id: Int64, expiresAt: Int64)] = []
        let rows = try database.statement("""
            SELECT id, expires_at, revoked_seq FROM sessions WHERE revoked_seq > ? ORDER BY revoked_seq
            """).rows([.integer(seq)]) { ($0.int(0), $0.int(1), $0.int(2)) }
        for (id, expiresAt, revokedSeq) in rows {
            through = max(through, revokedSeq)
            if expiresAt > now { sessions.append((id, expiresAt)) }
        }
        return (sessions, through)
    }

    /// Deletes sessions whose tokens expired before `before` (seconds since 1970): no token
    /// of theirs is accepted anywhere, so nothing needs them. The session holding the newest
    /// `revoked_seq` stays, so that the counter never goes back (`revoke` computes the next
    /// one from the maximum, and the watchers read only seqs above what they have seen).
    @discardableResult
    public func pruneSessions(expiredBefore before: Int64, limit: Int = 5_000) throws -> Int {
        try database.write {
            try database.statement("""
                DELETE FROM sessions WHERE id IN (
                    SELECT id FROM sessions WHERE expires_at < ?1
                    AND (revoked_seq IS NULL OR revoked_seq < (SELECT max(revoked_seq) FROM sessions))
                    LIMIT ?2)
                """).run([.integer(before), .integer(Int64(limit))])
        }
    }

    // MARK: passwords

    /// The user's password hash (PHC string), nil without a password.
    public func passwordHash(userID: Int64) throws -> String? {
        try database.statement("SELECT password_hash FROM users WHERE id = ?").first([.integer(userID)]) { $0.optionalString(0) }
            ?? nil
    }

    /// Sets the user's password hash and revokes every other session, in one transaction;
    /// returns the sessions revoked.
    public func setPassword(userID: Int64, hash: String, keepingSession: Int64) throws -> [Int64] {
        try database.write {
            try database.statement("UPDATE users SET password_hash = ? WHERE id = ?").run([.text(hash), .integer(userID)])
            return try revoke(userID: userID, only: nil, keeping: keepingSession)
        }
    }
}
