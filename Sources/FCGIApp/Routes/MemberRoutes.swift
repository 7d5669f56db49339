import Domain

/// Running a group: its members, their roles, its name (DESIGN, "New endpoints").
enum MemberRoutes {
    /// `GET /chats/:id/members` → `[{user_id, role, joined_at}]`.
    @Sendable static func list(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        return .json(try context.store.chatMembers(chatID: request.idParameter("id"), userID: user.id))
    }

    /// `POST /chats/:id/members {user_ids}` → the members after it; owner or admin.
    @Sendable static func add(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        let chatID = try request.idParameter("id")
        let fields = try request.jsonFields()
        guard let values = try fields.optionalArray("user_ids"), !values.isEmpty else {
            throw HTTPError(.badRequest, "user_ids must be a non-empty array of user ids")
        }
        guard values.count <= GroupDraft.maxParticipants else {
            throw HTTPError(.badRequest, "at most \(GroupDraft.maxParticipants) user ids at once")
        }
        let ids = try values.map { value throws(HTTPError) -> Int64 in
            guard case .int(let id) = value, id > 0 else { throw HTTPError(.badRequest, "user_ids must be positive integers") }
            return id
        }
        let members = try context.writer.perform { try $0.addMembers(chatID: chatID, by: user.id, userIDs: ids) }
        context.notify(.chat(chatID: chatID))
        return .json(members)
    }

    /// `DELETE /chats/:id/members/:uid` → 204: remove a member (owner or admin), or leave.
    @Sendable static func remove(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        let (chatID, memberID) = (try request.idParameter("id"), try request.idParameter("uid"))
        try context.writer.perform { try $0.removeMember(chatID: chatID, userID: memberID, by: user.id) }
        context.notify(.chat(chatID: chatID))
        return .noContent
    }

    /// `PATCH /chats/:id/members/:uid {role}` → the member; the owner only.
    @Sendable static func setRole(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        let (chatID, memberID) = (try request.idParameter("id"), try request.idParameter("uid"))
        let raw = try request.jsonFields().string("role")
        guard let role = ChatRole(rawValue: raw) else {
            throw HTTPError(.badRequest, "role must be one of owner, admin, member")
        }
        let member = try context.writer.perform { try $0.setRole(chatID: chatID, userID: memberID, role: role, by: user.id) }
        context.notify(.chat(chatID: chatID))
        return .json(member)
    }

    /// `PATCH /chats/:id {name}` → the renamed chat (full shape); owner or admin.
    @Sendable static func rename(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        let chatID = try request.idParameter("id")
        let name = try GroupDraft.validateName(request.jsonFields().string("name"))
        let chat = try context.writer.perform { try $0.renameChat(chatID: chatID, name: name, by: user.id) }
        context.notify(.chat(chatID: chatID))
        return .json(try context.store.database.read { try context.store.chatView(chat, for: user.id) })
    }
}
