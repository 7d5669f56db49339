import Domain

/// Blocking: a user you blocked cannot send into your direct chat or start one with you.
/// Groups are unaffected, and both of you still read the old history.
extension Store {
    /// Blocks (`blocked`) or unblocks `userID` for `blockerID`; idempotent.
    public func setBlock(blockerID: Int64, userID: Int64, blocked: Bool) throws {
        guard userID != blockerID else { throw MessengerError.invalid("you cannot block yourself") }
        try database.write {
            guard try user(id: userID) != nil else { throw MessengerError.notFound("user \(userID) not found") }
            if blocked {
                try database.statement("INSERT INTO blocks (blocker_id, blocked_id) VALUES (?, ?) ON CONFLICT DO NOTHING")
                    .run([.integer(blockerID), .integer(userID)])
            } else {
                try database.statement("DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?")
                    .run([.integer(blockerID), .integer(userID)])
            }
        }
    }

    /// The users `blockerID` blocked, in the order they were blocked.
    public func blockedUsers(by blockerID: Int64) throws -> [User] {
        try database.statement("""
            SELECT \(Self.userColumns.split(separator: ",").map { "u." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", "))
            FROM blocks b JOIN users u ON u.id = b.blocked_id WHERE b.blocker_id = ? ORDER BY b.created_at, u.id
            """).rows([.integer(blockerID)], Self.user)
    }

    /// Whether `blockerID` blocked `userID`.
    public func hasBlocked(_ blockerID: Int64, _ userID: Int64) throws -> Bool {
        try database.statement("SELECT 1 FROM blocks WHERE blocker_id = ? AND blocked_id = ?")
            .first([.integer(blockerID), .integer(userID)]) { _ in true } ?? false
    }

    /// Refuses a send by `senderID` into `chatID` when it is a direct chat whose other member
    /// blocked them.
    func refuseIfBlocked(senderID: Int64, chatID: Int64) throws {
        let blocked = try database.statement("""
            SELECT 1 FROM chats c JOIN blocks b
              ON b.blocked_id = ?1 AND b.blocker_id = CASE WHEN c.direct_low = ?1 THEN c.direct_high ELSE c.direct_low END
            WHERE c.id = ?2 AND c.chat_type = 'direct'
            """).first([.integer(senderID), .integer(chatID)]) { _ in true } ?? false
        if blocked { throw MessengerError.forbidden("blocked: this user does not accept your messages") }
    }
}
