import Domain

/// The largest JSON body any endpoint accepts.
let maxJSONBodyBytes = 256 * 1024

extension Request {
    /// The caller, from `Authorization: Bearer <token>`: 401 without a valid token, or when
    /// the token's user does not exist (the database was replaced under a kept secret).
    func authenticate(_ context: Context) throws -> Caller {
        guard let header = headers["authorization"] else {
            throw HTTPError(.unauthorized, "missing Authorization: Bearer token")
        }
        guard let token = TokenService.bearerToken(fromAuthorization: header) else {
            throw HTTPError(.unauthorized, "Authorization header must be 'Bearer <token>'")
        }
        let now = context.now()
        if let caller = context.verifiedTokens.caller(for: token, now: now) { return caller }
        let claims = try context.tokens.verify(token, now: now)
        guard try context.store.user(id: claims.userID) != nil else {
            throw HTTPError(.unauthorized, "the token's user no longer exists")
        }
        let caller = Caller(id: claims.userID, username: claims.username)
        context.verifiedTokens.remember(token, caller: caller, expiresAt: claims.expiresAt)
        return caller
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
