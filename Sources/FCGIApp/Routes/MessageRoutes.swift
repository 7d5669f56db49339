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

extension MessageRoutes {
    /// `PATCH /chats/:id/messages/:mid {content}` → the edited message (full shape): the
    /// sender's own, under the rules of a send; attachments stay.
    @Sendable static func edit(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        let (chatID, messageID) = (try request.idParameter("id"), try request.idParameter("mid"))
        let fields = try request.jsonFields()
        guard fields.contains("content") else { throw HTTPError(.badRequest, "content is required") }
        let content = try fields.optionalString("content")
        let edited = try context.writer.perform {
            try $0.editMessage(chatID: chatID, messageID: messageID, by: user.id, content: content)
        }
        context.notify(.message(chatID: chatID, messageID: messageID))
        return .json(edited.full)
    }

    /// `DELETE /chats/:id/messages/:mid` → 204: the sender, or a group's owner or admin.
    @Sendable static func delete(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        let (chatID, messageID) = (try request.idParameter("id"), try request.idParameter("mid"))
        try context.writer.perform { try $0.deleteMessage(chatID: chatID, messageID: messageID, by: user.id) }
        context.notify(.message(chatID: chatID, messageID: messageID))
        return .noContent
    }

    /// `PUT /chats/:id/messages/:mid/reactions/:emoji` → 204; idempotent.
    @Sendable static func react(_ request: inout Request, _ context: Context) throws -> Response {
        try setReaction(&request, context, present: true)
    }

    /// `DELETE /chats/:id/messages/:mid/reactions/:emoji` → 204; idempotent.
    @Sendable static func unreact(_ request: inout Request, _ context: Context) throws -> Response {
        try setReaction(&request, context, present: false)
    }

    private static func setReaction(_ request: inout Request, _ context: Context, present: Bool) throws -> Response {
        let user = try request.authenticate(context)
        let (chatID, messageID) = (try request.idParameter("id"), try request.idParameter("mid"))
        let emoji = try Emoji.validate(request.parameters["emoji"] ?? "")
        let changed = try context.writer.perform {
            try $0.setReaction(chatID: chatID, messageID: messageID, by: user.id, emoji: emoji, present: present)
        }
        if changed { context.notify(.message(chatID: chatID, messageID: messageID)) }
        return .noContent
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
