import Domain
import Storage

enum MessageRoutes {
    /// `GET /chats/:id/messages?limit=&before_id=&after_id=` → `{chat_id, messages}`.
    @Sendable static func history(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        let version = try request.version()
        let chat = try context.store.accessibleChat(id: request.idParameter("id"), userID: user.id)
        let messages = try context.store.messages(chatID: chat.id, query: request.messageQuery())
        return .json(MessagePage(chatID: chat.id, messages: messages, version: version))
    }

    /// `POST /chats/:id/messages {content?, files?, nonce?}` → the stored message, which is
    /// also pushed live; the REST twin of a WebSocket send.
    @Sendable static func post(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        let version = try request.version()
        let chatID = try request.idParameter("id")
        let draft = try MessageDraft(request.jsonFields())
        let posted = try context.writer.post(OutgoingMessage(senderID: user.id, chatID: chatID, draft: draft))
        if posted.isNew { context.notify(.message(chatID: chatID, messageID: posted.message.id)) }
        switch version {
        case .v1: return .json(posted.message)
        case .v2: return .json(posted.message.full)
        }
    }
}

extension Request {
    /// `limit` (1–1000, default 100), `before_id`, `after_id` (0 allowed: from the start).
    func messageQuery() throws(HTTPError) -> MessageQuery {
        var query = MessageQuery()
        if let raw = self.query["limit"] {
            guard let limit = Int(raw), (1...MessageQuery.maxLimit).contains(limit) else {
                throw HTTPError(.badRequest, "limit must be an integer from 1 to \(MessageQuery.maxLimit)")
            }
            query.limit = limit
        }
        query.beforeID = try queryID("before_id")
        query.afterID = try queryCursor("after_id")
        return query
    }
}
