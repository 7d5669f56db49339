import Domain

/// Running a group: members, roles, its name. Every change is one transaction with a CHAT
/// event for the members after it, and a CHAT_REMOVED event for whoever left or was removed.
/// The relay drops a chat's cached members when its CHAT event passes, so a removed member's
/// sockets get nothing of the chat after the removal's seq.
extension Store {
    /// The members of a chat `userID` belongs to, longest-standing first.
    public func chatMembers(chatID: Int64, userID: Int64) throws -> [ChatMember] {
        try database.read {
            let chat = try accessibleChat(id: chatID, userID: userID)
            guard chat.kind == .group else { throw MessengerError.invalid("a direct chat has no members to manage") }
            return try members(of: chatID)
        }
    }

    /// Adds `userIDs` (ids already in the group are left as they are); owner or admin only.
    /// Returns the members after it.
    public func addMembers(chatID: Int64, by actorID: Int64, userIDs: [Int64]) throws -> [ChatMember] {
        try database.write {
            try requireGroupRole(chatID: chatID, actorID: actorID, [.owner, .admin], to: "add members")
            let present = Set(try members(chatID: chatID))
            let adding = Array(Set(userIDs).subtracting(present)).sorted()
            guard present.count + adding.count <= GroupDraft.maxMembers else {
                throw MessengerError.invalid("a group may have at most \(GroupDraft.maxMembers) members")
            }
            guard !adding.isEmpty else { return try members(of: chatID) }
            let list = SQLValue.idList(adding)
            let known = Set(try database.statement(Self.usersFound).rows([list]) { $0.int(0) })
            let unknown = adding.filter { !known.contains($0) }
            guard unknown.isEmpty else {
                throw MessengerError.invalid("unknown user ids: " + unknown.prefix(5).map(String.init).joined(separator: ", "))
            }
            let seq = try appendEvent(.chat, .chat(chatID))
            try database.statement(Self.membersInserted).run([.integer(chatID), .integer(seq), list])
            return try members(of: chatID)
        }
    }

    /// Removes `userID` from the group, or lets them leave when `actorID == userID`.
    /// Removing takes an owner or admin, and an admin removes members only. When the owner
    /// leaves, the longest-standing admin — else member — becomes the owner.
    public func removeMember(chatID: Int64, userID: Int64, by actorID: Int64) throws {
        try database.write {
            let actorRole = try requireGroupRole(chatID: chatID, actorID: actorID, ChatRole.allCases, to: "change members")
            guard let targetRole = try role(chatID: chatID, userID: userID) else {
                throw MessengerError.notFound("user \(userID) is not a member of chat \(chatID)")
            }
            if userID != actorID {
                switch (actorRole, targetRole) {
                case (.owner, _), (.admin, .member): break
                case (.admin, _): throw MessengerError.forbidden("an admin cannot remove the owner or another admin")
                case (.member, _): throw MessengerError.forbidden("only the group's owner or an admin may remove members")
                }
            }
            try database.statement("DELETE FROM chat_members WHERE chat_id = ? AND user_id = ?")
                .run([.integer(chatID), .integer(userID)])
            if targetRole == .owner {
                try database.statement("""
                    UPDATE chat_members SET role = 'owner' WHERE chat_id = ?1 AND user_id = (
                        SELECT user_id FROM chat_members WHERE chat_id = ?1
                        ORDER BY role = 'admin' DESC, joined_at, joined_seq, user_id LIMIT 1)
                    """).run([.integer(chatID)])
            }
            var data = JSONWriter(capacity: 24)
            data.object { $0.field("chat_id", chatID) }
            try appendEvent(.chatRemoved, .user(userID), data: data.bytes, chatID: chatID)
            try appendEvent(.chat, .chat(chatID))
        }
    }

    /// Sets a member's role; the owner only. Making someone the owner hands ownership over:
    /// the old owner becomes an admin.
    public func setRole(chatID: Int64, userID: Int64, role newRole: ChatRole, by actorID: Int64) throws -> ChatMember {
        try database.write {
            try requireGroupRole(chatID: chatID, actorID: actorID, [.owner], to: "change roles")
            guard try role(chatID: chatID, userID: userID) != nil else {
                throw MessengerError.notFound("user \(userID) is not a member of chat \(chatID)")
            }
            if userID == actorID {
                guard newRole == .owner else {
                    throw MessengerError.invalid("the owner hands ownership over by making another member the owner")
                }
            } else {
                if newRole == .owner {
                    try database.statement("UPDATE chat_members SET role = 'admin' WHERE chat_id = ? AND user_id = ?")
                        .run([.integer(chatID), .integer(actorID)])
                }
                try database.statement("UPDATE chat_members SET role = ? WHERE chat_id = ? AND user_id = ?")
                    .run([.text(newRole.rawValue), .integer(chatID), .integer(userID)])
            }
            try appendEvent(.chat, .chat(chatID))
            guard let member = try members(of: chatID).first(where: { $0.userID == userID }) else {
                throw StorageError(code: 0, message: "member vanished")
            }
            return member
        }
    }

    /// Renames a group; owner or admin.
    public func renameChat(chatID: Int64, name: String, by actorID: Int64) throws -> Chat {
        try database.write {
            try requireGroupRole(chatID: chatID, actorID: actorID, [.owner, .admin], to: "rename the group")
            try database.statement("UPDATE chats SET name = ? WHERE id = ?").run([.text(name), .integer(chatID)])
            try appendEvent(.chat, .chat(chatID))
            guard let chat = try chat(id: chatID) else { throw StorageError(code: 0, message: "chat vanished") }
            return chat
        }
    }

    private static let membersInserted: SQL = """
        INSERT INTO chat_members (chat_id, user_id, joined_seq)
        SELECT CAST(?1 AS BIGINT), ids.value, CAST(?2 AS BIGINT) FROM \(.idRows("?3")) ids
        """

    private func members(of chatID: Int64) throws -> [ChatMember] {
        try database.statement("""
            SELECT user_id, role, joined_at FROM chat_members WHERE chat_id = ? ORDER BY joined_at, user_id
            """).rows([.integer(chatID)]) {
                ChatMember(userID: $0.int(0), role: ChatRole(rawValue: $0.string(1)) ?? .member, joinedAt: $0.string(2))
            }
    }

    /// The actor's role in a group, checked: 404 unknown chat, 403 not a member, 400 a direct
    /// chat, 403 a role not in `allowed`.
    @discardableResult
    private func requireGroupRole(chatID: Int64, actorID: Int64, _ allowed: [ChatRole], to action: String) throws -> ChatRole {
        let chat = try accessibleChat(id: chatID, userID: actorID)
        guard chat.kind == .group else { throw MessengerError.invalid("a direct chat has no members to manage") }
        guard let role = try role(chatID: chatID, userID: actorID), allowed.contains(role) else {
            let who = allowed == [.owner] ? "the group's owner" : "the group's owner or an admin"
            throw MessengerError.forbidden("only \(who) may \(action)")
        }
        return role
    }
}
