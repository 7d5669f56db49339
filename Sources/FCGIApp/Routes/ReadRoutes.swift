import Domain

/// Read markers, receipts and presence (DESIGN, "New endpoints").
enum ReadRoutes {
    static let maxPresenceIDs = 100

    /// `POST /chats/:id/read {message_id}` → `{chat_id, last_read_id, unread_count}`; the
    /// marker only moves forward.
    @Sendable static func markRead(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        let chatID = try request.idParameter("id")
        let messageID = try request.jsonFields().id("message_id")
        let marker = try context.writer.perform { try $0.markRead(chatID: chatID, userID: user.id, messageID: messageID) }
        context.notify(.chat(chatID: chatID))
        return .json(marker)
    }

    /// `GET /chats/:id/receipts` → `[{user_id, last_read_id}]` of every member.
    @Sendable static func receipts(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        return .json(try context.store.receipts(chatID: request.idParameter("id"), userID: user.id))
    }

    /// `GET /presence?user_ids=1,2,3` → `[{user_id, online, last_seen}]` of those who share a
    /// chat with you (the others are left out); at most 100 ids.
    @Sendable static func presence(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        guard let raw = request.query["user_ids"], !raw.isEmpty else {
            throw HTTPError(.badRequest, "user_ids is required: a comma-separated list of user ids")
        }
        var ids: [Int64] = []
        for part in raw.split(separator: ",", omittingEmptySubsequences: false) {
            let id = try Request.parseID(String(part), name: "each of user_ids")
            if !ids.contains(id) { ids.append(id) }
        }
        guard ids.count <= maxPresenceIDs else { throw HTTPError(.badRequest, "at most \(maxPresenceIDs) user ids") }
        return .json(try context.store.presence(of: ids, visibleTo: user.id))
    }
}
