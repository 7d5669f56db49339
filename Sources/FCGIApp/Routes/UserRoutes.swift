import Domain

enum UserRoutes {
    static let maxSearchResults = 50

    /// `GET /users/:username` or `GET /users/:id` (all digits). Public, as in seed 000; a
    /// token, if sent, must still be valid.
    @Sendable static func show(_ request: inout Request, _ context: Context) throws -> Response {
        if request.headers["authorization"] != nil { _ = try request.authenticate(context) }
        let reference = request.parameters["user"] ?? ""
        let user: User?
        if let first = reference.utf8.first, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") {
            user = try context.store.user(id: Request.parseID(reference, name: "user id"))
        } else {
            user = try context.store.user(username: Username.validate(reference))
        }
        guard let user else { throw HTTPError(.notFound, "user \(reference) not found") }
        return .json(user)
    }

    /// `GET /users?username=fragment` → at most 50 users whose name contains the fragment.
    @Sendable static func search(_ request: inout Request, _ context: Context) throws -> Response {
        _ = try request.authenticate(context)
        guard let fragment = request.query["username"], !fragment.isEmpty else {
            throw HTTPError(.badRequest, "the username query parameter is required")
        }
        guard fragment.count <= Username.maxLength else {
            throw HTTPError(.badRequest, "username query must be at most \(Username.maxLength) characters")
        }
        return .json(try context.store.searchUsers(matching: fragment, limit: maxSearchResults))
    }

    /// `PATCH /users/me {display_name?, bio?, image_id?}` → the updated user.
    @Sendable static func updateProfile(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        let update = try ProfileUpdate(request.jsonFields())
        let updated = try context.writer.perform { try $0.updateProfile(userID: user.id, update) }
        context.notify(.user(userID: user.id))
        return .json(updated)
    }

    /// `GET /users/me/blocks` → the users you blocked.
    @Sendable static func blocks(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        return .json(try context.store.blockedUsers(by: user.id))
    }

    /// `PUT /users/me/blocks/:uid` → 204; idempotent.
    @Sendable static func block(_ request: inout Request, _ context: Context) throws -> Response {
        try setBlock(&request, context, blocked: true)
    }

    /// `DELETE /users/me/blocks/:uid` → 204; idempotent.
    @Sendable static func unblock(_ request: inout Request, _ context: Context) throws -> Response {
        try setBlock(&request, context, blocked: false)
    }

    private static func setBlock(_ request: inout Request, _ context: Context, blocked: Bool) throws -> Response {
        let user = try request.authenticate(context)
        let target = try request.idParameter("uid")
        try context.writer.perform { try $0.setBlock(blockerID: user.id, userID: target, blocked: blocked) }
        return .noContent
    }
}
