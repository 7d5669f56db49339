import Domain

enum ChatRoutes {
    /// `POST /chats/initiate {target_username}` or `{target_id}` → `{chat_id, status}`.
    @Sendable static func initiate(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        let fields = try request.jsonFields()
        let peer: User
        switch (fields.contains("target_username"), fields.contains("target_id")) {
        case (true, false):
            let name = try Username.validate(fields.string("target_username"))
            guard let found = try context.store.user(username: name) else {
                throw HTTPError(.notFound, "user \(name) not found")
            }
            peer = found
        case (false, true):
            let id = try fields.id("target_id")
            guard let found = try context.store.user(id: id) else { throw HTTPError(.notFound, "user \(id) not found") }
            peer = found
        case (true, true):
            throw HTTPError(.badRequest, "give target_username or target_id, not both")
        case (false, false):
            throw HTTPError(.badRequest, "target_username or target_id is required")
        }
        let result = try context.writer.perform { try $0.initiateDirectChat(userID: user.id, peerID: peer.id) }
        if result.created { context.notify(.chat(chatID: result.chatID)) }
        return .json(result)
    }

    /// `GET /chats` → every chat the caller belongs to: oldest first in the seed shape, newest
    /// activity first as protocol 2's full chats, which page with `?limit=` (1–1000; default
    /// all) and `before_chat_id=` (the last chat of the previous page).
    @Sendable static func list(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        switch try request.version() {
        case .v1:
            return .json(try context.store.chats(forUser: user.id))
        case .v2:
            var limit: Int?
            if let raw = request.query["limit"] {
                guard let value = Int(raw), (1...maxChatPage).contains(value) else {
                    throw HTTPError(.badRequest, "limit must be an integer from 1 to \(maxChatPage)")
                }
                limit = value
            }
            return .json(try context.store.chatViews(forUser: user.id, limit: limit,
                                                     beforeChatID: request.queryID("before_chat_id")))
        }
    }

    static let maxChatPage = 1000

    /// `POST /chats {name, participants}` → the new group chat; the creator is a member.
    @Sendable static func createGroup(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        let version = try request.version()
        let draft = try GroupDraft(request.jsonFields())
        let chat = try context.writer.perform {
            try $0.createGroup(creatorID: user.id, name: draft.name, participants: draft.participants)
        }
        context.notify(.chat(chatID: chat.id))
        return try chatResponse(chat, for: user, version: version, context)
    }

    /// `GET /chats/:id` → the chat, for members only.
    @Sendable static func show(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        let version = try request.version()
        let chat = try context.store.accessibleChat(id: request.idParameter("id"), userID: user.id)
        return try chatResponse(chat, for: user, version: version, context)
    }

    private static func chatResponse(_ chat: Chat, for user: Caller, version: ProtocolVersion,
                                     _ context: Context) throws -> Response {
        switch version {
        case .v1: return .json(chat)
        case .v2: return .json(try context.store.database.read { try context.store.chatView(chat, for: user.id) })
        }
    }
}
