/// Who a valid token speaks for.
public struct TokenClaims: Sendable, Equatable {
    public let userID: Int64
    public let username: String
    public let issuedAt: Int64
    public let expiresAt: Int64
    /// The session the token belongs to (claim `sid`); nil in tokens issued before sessions
    /// existed, which both processes refuse (`session()`).
    public let sessionID: Int64?

    public init(userID: Int64, username: String, issuedAt: Int64, expiresAt: Int64, sessionID: Int64? = nil) {
        self.userID = userID
        self.username = username
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.sessionID = sessionID
    }

    /// The token's session. A token without one was issued before sessions existed: it could
    /// never be revoked (not by a logout, not by a password change), so it is refused and the
    /// client logs in again — at most once, within a token lifetime of the upgrade.
    public func session() throws(TokenError) -> Int64 {
        guard let sessionID else { throw .noSession }
        return sessionID
    }
}

/// Why a token was refused. The text is safe to show to the client.
public struct TokenError: Error, Equatable, Sendable, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }

    public static let malformed = TokenError(reason: "malformed token")
    public static let wrongAlgorithm = TokenError(reason: "token algorithm must be HS256")
    public static let badSignature = TokenError(reason: "invalid token signature")
    public static let expired = TokenError(reason: "token expired")
    public static let badClaims = TokenError(reason: "token claims are missing or invalid")
    public static let noSession = TokenError(reason: "token predates sessions; log in again")
    public static let revoked = TokenError(reason: "session revoked; log in again")
}

/// Issues and verifies HS256 JSON Web Tokens.
///
/// The algorithm is pinned: a token is always checked with HMAC-SHA256 and our key, and one
/// whose header names anything else (`none`, `RS256`, …) is refused before any other check.
/// One implementation serves FCGIApp and WSRelay, so both accept exactly the same tokens.
public struct TokenService: Sendable {
    public static let defaultLifetime: Int64 = 24 * 60 * 60

    private let key: [UInt8]
    public let lifetime: Int64

    public init(secret: [UInt8], lifetime: Int64 = TokenService.defaultLifetime) {
        precondition(!secret.isEmpty, "a JWT secret must not be empty")
        self.key = secret
        self.lifetime = lifetime
    }

    private static let header = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))

    /// A token for `userID` in session `sessionID` (claim `sid`; nil only in tests of
    /// tokens from before sessions).
    public func issue(userID: Int64, username: String, sessionID: Int64? = nil, now: Int64) -> String {
        var payload = JSONWriter()
        payload.object { json in
            json.field("sub", String(userID))
            json.field("user_id", userID)
            json.field("username", username)
            json.field("iat", now)
            json.field("exp", now + lifetime)
            if let sessionID { json.field("sid", sessionID) }
        }
        let signingInput = Self.header + "." + Base64URL.encode(payload.bytes)
        return signingInput + "." + Base64URL.encode(signature(for: signingInput))
    }

    public func signature(for signingInput: String) -> [UInt8] {
        HMACSHA256.authenticate(signingInput.utf8, key: key)
    }

    public func verify(_ token: some StringProtocol, now: Int64) throws(TokenError) -> TokenClaims {
        let bytes = Array(token.utf8)
        guard bytes.count <= 4096,
              let firstDot = bytes.firstIndex(of: UInt8(ascii: ".")),
              let secondDot = bytes[(firstDot + 1)...].firstIndex(of: UInt8(ascii: ".")),
              !bytes[(secondDot + 1)...].contains(UInt8(ascii: ".")),
              let headerBytes = Base64URL.decode(bytes[..<firstDot]),
              let payloadBytes = Base64URL.decode(bytes[(firstDot + 1)..<secondDot]),
              let signature = Base64URL.decode(bytes[(secondDot + 1)...]),
              let header = try? JSONFields(parsing: headerBytes)
        else { throw .malformed }

        guard (try? header.optionalString("alg")) == "HS256" else { throw .wrongAlgorithm }
        let expected = HMACSHA256.authenticate(bytes[..<secondDot], key: key)
        guard HMACSHA256.constantTimeEquals(expected, signature) else {
            throw .badSignature
        }

        guard let payload = try? JSONFields(parsing: payloadBytes),
              let userID = try? payload.id("user_id"),
              let username = try? payload.string("username"),
              let expiresAt = try? payload.int("exp")
        else { throw .badClaims }
        if let subject = try? payload.optionalString("sub"), subject != String(userID) { throw .badClaims }
        guard now < expiresAt else { throw .expired }
        let issuedAt = (try? payload.optionalInt("iat")) ?? nil
        let sessionID: Int64?
        do {
            sessionID = try payload.optionalID("sid")
        } catch {
            throw .badClaims
        }
        return TokenClaims(userID: userID, username: username, issuedAt: issuedAt ?? 0, expiresAt: expiresAt,
                           sessionID: sessionID)
    }

    /// The token in an `Authorization: Bearer <token>` header value, if it has that form.
    public static func bearerToken(fromAuthorization value: some StringProtocol) -> Substring? {
        let text = Substring(value)
        let utf8 = text.utf8
        var start = utf8.startIndex
        while start < utf8.endIndex, utf8[start] == UInt8(ascii: " ") { start = utf8.index(after: start) }
        let scheme = Array("bearer ".utf8)
        var index = start
        for expected in scheme {
            guard index < utf8.endIndex else { return nil }
            let byte = utf8[index]
            let lowered = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
            guard lowered == expected else { return nil }
            index = utf8.index(after: index)
        }
        while index < utf8.endIndex, utf8[index] == UInt8(ascii: " ") { index = utf8.index(after: index) }
        guard index < utf8.endIndex else { return nil }
        return text[index...]
    }
}
