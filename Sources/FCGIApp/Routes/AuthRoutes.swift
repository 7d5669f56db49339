import Domain
import Storage

/// Logging in and out, passwords and sessions (DESIGN, "New endpoints").
enum AuthRoutes {
    /// The one answer to every failed password login — wrong, missing, for a user without a
    /// password, or for a user who does not exist — so that none can be told apart.
    static let loginRefused = "wrong username or password"

    /// `POST /login {username, password?}` → `{token}`. A user without a password logs in with
    /// the name alone and is created if new (the seeds); a user with one must give it.
    /// Whenever a password is involved, one Argon2id verification runs — against the user's
    /// hash, or a dummy — so every refusal costs the same time.
    @Sendable static func login(_ request: inout Request, _ context: Context) throws -> Response {
        let fields = try request.jsonFields()
        let username = try Username.validate(fields.string("username"))
        let password = try fields.optionalString("password")
        // Per address first: a guesser spreading over many names still meets this one.
        try context.limitRate(.loginAddress, key: request.clientAddress ?? "unknown")
        try context.limitRate(.loginUser, key: Username.key(for: username))
        // Most logins are of existing users: reads, on this worker's own connection.
        var user = try context.store.user(username: username)
        let hash = try user.flatMap { try context.store.passwordHash(userID: $0.id) }
        if hash != nil || password != nil {
            guard let password, password.count <= Password.maxLength else {
                // Nothing to verify, but the same work, so that the answer's time says nothing.
                _ = try context.passwords.run { $0.verifyDummy("") }
                throw HTTPError(.unauthorized, loginRefused)
            }
            let accepted = try context.passwords.run { hasher in
                if let hash { return hasher.verify(password, against: hash) }
                return hasher.verifyDummy(password)
            }
            guard accepted else { throw HTTPError(.unauthorized, loginRefused) }
        }
        if user == nil { user = try context.writer.perform { try $0.login(username: username) } }
        guard let user else { throw HTTPError(.internalServerError, "internal server error") }
        let now = context.now()
        let sessionID = try context.writer.perform { try $0.createSession(userID: user.id, expiresAt: now + context.tokens.lifetime) }
        let token = context.tokens.issue(userID: user.id, username: user.username, sessionID: sessionID, now: now)
        return .json(TokenResponse(token: token))
    }

    /// `POST /logout` → 204: revokes this token's session.
    @Sendable static func logout(_ request: inout Request, _ context: Context) throws -> Response {
        let caller = try request.authenticate(context)
        let revoked = try context.writer.perform { try $0.revokeSession(caller.sessionID, userID: caller.id) }
        noteRevoked(revoked, context)
        return .noContent
    }

    /// `POST /logout/all` → 204: revokes every session of the caller, this one included.
    @Sendable static func logoutAll(_ request: inout Request, _ context: Context) throws -> Response {
        let caller = try request.authenticate(context)
        let revoked = try context.writer.perform { try $0.revokeSessions(userID: caller.id) }
        noteRevoked(revoked, context)
        return .noContent
    }

    /// `GET /users/me/sessions` → `[{id, created_at, last_used_at, expires_at, current}]`,
    /// the caller's sessions that are neither revoked nor expired, newest first.
    @Sendable static func sessions(_ request: inout Request, _ context: Context) throws -> Response {
        let caller = try request.authenticate(context)
        var sessions = try context.store.activeSessions(userID: caller.id, now: context.now())
        for index in sessions.indices { sessions[index].current = sessions[index].id == caller.sessionID }
        return .json(sessions)
    }

    /// `PUT /users/me/password {password, current_password?}` → 204. `current_password` is
    /// required once a password is set. Every other session of the user is revoked; this
    /// one stays logged in. Limited like logins (`RATE_LOGIN`, per username), since a wrong
    /// `current_password` is a guess.
    @Sendable static func setPassword(_ request: inout Request, _ context: Context) throws -> Response {
        let caller = try request.authenticate(context)
        let fields = try request.jsonFields()
        let password = try Password.validate(fields.string("password"))
        let current = try fields.optionalString("current_password")
        let existing = try context.store.passwordHash(userID: caller.id)
        if existing != nil, current == nil {
            throw HTTPError(.badRequest, "current_password is required to change a password")
        }
        try context.limitRate(.loginUser, key: Username.key(for: caller.username))
        let hash = try context.passwords.run { hasher -> String? in
            if let existing, let current {
                guard current.count <= Password.maxLength, hasher.verify(current, against: existing) else { return nil }
            }
            return try hasher.hash(password)
        }
        guard let hash else { throw HTTPError(.forbidden, "current_password is wrong") }
        let revoked = try context.writer.perform { try $0.setPassword(userID: caller.id, hash: hash, keepingSession: caller.sessionID) }
        noteRevoked(revoked, context)
        return .noContent
    }

    /// This process refuses the sessions at once; the relay and FCGIApp's other processes
    /// read them within `RevokedSessions.pollInterval`.
    private static func noteRevoked(_ sessionIDs: [Int64], _ context: Context) {
        context.revokedSessions.note(sessionIDs, expiresAt: context.now() + context.tokens.lifetime)
    }
}

private struct TokenResponse: JSONEncodable {
    let token: String

    func encode(to writer: inout JSONWriter) {
        writer.object { $0.field("token", token) }
    }
}
