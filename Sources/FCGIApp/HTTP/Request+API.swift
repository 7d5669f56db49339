import Domain
import Storage

/// The largest JSON body any endpoint accepts.
let maxJSONBodyBytes = 256 * 1024

extension Request {
    /// The caller, from `Authorization: Bearer <token>`: 401 without a valid token, when its
    /// session was revoked (by a logout, or a password change elsewhere) or is unknown, and
    /// for tokens from before sessions (`TokenClaims.session()`).
    func authenticate(_ context: Context) throws -> Caller {
        guard let header = headers["authorization"] else {
            throw HTTPError(.unauthorized, "missing Authorization: Bearer token")
        }
        guard let token = TokenService.bearerToken(fromAuthorization: header) else {
            throw HTTPError(.unauthorized, "Authorization header must be 'Bearer <token>'")
        }
        let now = context.now()
        if let caller = context.verifiedTokens.caller(for: token, now: now) {
            guard !context.revokedSessions.isRevoked(caller.sessionID) else {
                context.verifiedTokens.forget(token)
                throw TokenError.revoked
            }
            touchSession(caller.sessionID, context, now: now)
            return caller
        }
        let claims = try context.tokens.verify(token, now: now)
        let sessionID = try claims.session()
        guard !context.revokedSessions.isRevoked(sessionID) else { throw TokenError.revoked }
        switch try context.store.sessionState(id: sessionID, userID: claims.userID) {
        case .active: break
        case .revoked: throw TokenError.revoked
        case .unknown: throw HTTPError(.unauthorized, "the token's session no longer exists; log in again")
        }
        let caller = Caller(id: claims.userID, username: claims.username, sessionID: sessionID)
        context.verifiedTokens.remember(token, caller: caller, expiresAt: claims.expiresAt)
        touchSession(sessionID, context, now: now)
        return caller
    }

    /// Writes the session's `last_used_at` once a minute per worker. Never fails or delays
    /// the request: skipped when the writer is busy or the database locked (a read must keep
    /// answering while another process holds the write lock), and tried again a minute on.
    private func touchSession(_ sessionID: Int64, _ context: Context, now: Int64) {
        guard context.verifiedTokens.touchIsDue(sessionID, now: now) else { return }
        do {
            _ = try context.writer.performIfFree(busyWaitMilliseconds: 10) { try $0.touchSession(id: sessionID) }
        } catch let error as StorageError where error.isBusy {
            return
        } catch {
            context.logger.warning("recording a session's last use failed", metadata: ["error": "\(error)"])
        }
    }

    /// The shapes the client reads: `?v=2` for protocol 2's full shapes, else the seeds'.
    func version() throws(HTTPError) -> ProtocolVersion {
        guard let raw = query["v"] else { return .v1 }
        do {
            return try ProtocolVersion(parsing: raw)
        } catch {
            throw HTTPError(.badRequest, error.message)
        }
    }

    /// The body as a JSON object.
    mutating func jsonFields() throws -> JSONFields {
        try JSONFields(parsing: bodyBytes(limit: maxJSONBodyBytes))
    }

    /// A positive integer id from a path parameter.
    func idParameter(_ name: String) throws(HTTPError) -> Int64 {
        try Self.parseID(parameters[name] ?? "", name: name)
    }

    /// An optional positive integer from the query string.
    func queryID(_ name: String) throws(HTTPError) -> Int64? {
        guard let raw = query[name] else { return nil }
        return try Self.parseID(raw, name: name)
    }

    /// An optional cursor from the query string: a message id, or 0 for "from the start",
    /// which is where a client that has seen nothing catches up from.
    func queryCursor(_ name: String) throws(HTTPError) -> Int64? {
        guard let raw = query[name] else { return nil }
        if raw == "0" { return 0 }
        return try Self.parseID(raw, name: name)
    }

    static func parseID(_ raw: String, name: String) throws(HTTPError) -> Int64 {
        guard !raw.isEmpty, raw.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw HTTPError(.badRequest, "\(name) must be a positive integer")
        }
        guard let value = Int64(raw), value > 0 else {
            throw HTTPError(.badRequest, "\(name) must be a positive integer within 64 bits")
        }
        return value
    }
}
