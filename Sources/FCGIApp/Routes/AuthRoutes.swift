import Domain

enum AuthRoutes {
    /// `POST /login {username}` → `{token}`; creates the user if new.
    @Sendable static func login(_ request: inout Request, _ context: Context) throws -> Response {
        let fields = try request.jsonFields()
        let username = try Username.validate(fields.string("username"))
        // Most logins are of existing users: a read, on this worker's own connection.
        let user = try context.store.user(username: username) ?? context.writer.perform { try $0.login(username: username) }
        let token = context.tokens.issue(userID: user.id, username: user.username, now: context.now())
        return .json(TokenResponse(token: token))
    }
}

private struct TokenResponse: JSONEncodable {
    let token: String

    func encode(to writer: inout JSONWriter) {
        writer.object { $0.field("token", token) }
    }
}
