import Domain
import NIOHTTP1
import Storage

/// Decides, from the upgrade request alone, what happens to a `GET /ws`.
///
/// A token may come as `Authorization: Bearer` (the seeds) or `?token=` (browsers cannot
/// set headers); without either, the socket opens and the client must send IDENTIFY. A token
/// that is present but invalid refuses the upgrade with 401.
struct UpgradeAuthenticator: Sendable {
    enum Decision: Equatable {
        /// Upgrade; `identity` is nil when the client must still IDENTIFY.
        case upgrade(identity: Identity?, stream: StreamOptions)
        case refuse(status: HTTPResponseStatus, message: String)
    }

    let tokens: TokenService
    let revokedSessions: RevokedSessions
    let now: @Sendable () -> Int64

    func decide(_ head: HTTPRequestHead) -> Decision {
        let (path, query) = Self.split(head.uri)
        guard path == "/ws" else { return .refuse(status: .notFound, message: "no such endpoint: \(path)") }
        guard head.method == .GET else { return .refuse(status: .methodNotAllowed, message: "/ws takes GET") }
        let stream: StreamOptions
        do {
            stream = try StreamOptions(query: query)
        } catch {
            return .refuse(status: .badRequest, message: error.message)
        }
        var token: Substring?
        if let header = head.headers.first(name: "authorization") {
            guard let bearer = TokenService.bearerToken(fromAuthorization: header) else {
                return .refuse(status: .unauthorized, message: "Authorization header must be 'Bearer <token>'")
            }
            token = bearer
        } else if let fromQuery = query["token"] {
            token = Substring(fromQuery)
        }
        guard let token else { return .upgrade(identity: nil, stream: stream) }
        do {
            return .upgrade(identity: try Identity(token: token, tokens: tokens, revokedSessions: revokedSessions, now: now()),
                            stream: stream)
        } catch {
            return .refuse(status: .unauthorized, message: error.reason)
        }
    }

    /// `/ws?token=abc` → (`/ws`, ["token": "abc"]).
    static func split(_ uri: String) -> (path: String, query: [String: String]) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, [:]) }
        var query: [String: String] = [:]
        for pair in uri[uri.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
            if query[name] == nil { query[name] = value }
        }
        return (String(uri[..<mark]), query)
    }
}

/// Who a socket speaks for: the token's user and session.
struct Identity: Sendable, Equatable {
    let userID: Int64
    let sessionID: Int64

    /// From a token: valid, with a session (tokens from before sessions are refused), and
    /// that session not revoked as far as this relay has read.
    init(token: some StringProtocol, tokens: TokenService, revokedSessions: RevokedSessions, now: Int64) throws(TokenError) {
        let claims = try tokens.verify(token, now: now)
        sessionID = try claims.session()
        guard !revokedSessions.isRevoked(sessionID) else { throw .revoked }
        userID = claims.userID
    }

    init(userID: Int64, sessionID: Int64) {
        self.userID = userID
        self.sessionID = sessionID
    }
}
