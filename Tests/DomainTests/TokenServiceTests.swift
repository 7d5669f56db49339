import Domain
import Testing

@Suite struct TokenServiceTests {
    private let secret = Array("a-test-secret-of-enough-length".utf8)
    private var service: TokenService { TokenService(secret: secret, lifetime: 3600) }
    private let now: Int64 = 1_700_000_000

    private func segment(_ json: String) -> String {
        Base64URL.encode(Array(json.utf8))
    }

    /// A token with any header and payload, signed with `signer`'s key.
    private func token(header: String, payload: String, signer: TokenService? = nil) -> String {
        let input = segment(header) + "." + segment(payload)
        return input + "." + Base64URL.encode((signer ?? service).signature(for: input))
    }

    private func payloadFields(of token: String) throws -> JSONFields {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        try #require(parts.count == 3)
        let bytes = try #require(Base64URL.decode(parts[1]))
        return try JSONFields(parsing: bytes)
    }

    // MARK: RFC 7515

    @Test func rfc7515AppendixA1Vector() throws {
        let key = try #require(Base64URL.decode(
            "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"))
        #expect(key.count == 64)
        let header = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        let payload = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        // The encoded segments are exactly the RFC's bytes, with CRLF line breaks.
        #expect(Base64URL.decode(Substring(header)) == Array("{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}".utf8))
        #expect(Base64URL.decode(Substring(payload))
            == Array("{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}".utf8))

        let signature = TokenService(secret: key).signature(for: header + "." + payload)
        #expect(Base64URL.encode(signature) == "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    }

    @Test func rfc7515VectorPassesTheSignatureCheck() throws {
        // The RFC's token has HS256 and a valid signature but none of our claims: it gets
        // past the algorithm and signature checks and is refused for its claims.
        let key = try #require(Base64URL.decode(
            "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"))
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
            + ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
            + ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        #expect(throws: TokenError.badClaims) { try TokenService(secret: key).verify(token, now: 1_300_819_379) }
        #expect(throws: TokenError.badSignature) { try service.verify(token, now: 1_300_819_379) }
    }

    // MARK: Round trip

    @Test func issueThenVerify() throws {
        let token = service.issue(userID: 42, username: "alice", now: now)
        let claims = try service.verify(token, now: now)
        #expect(claims == TokenClaims(userID: 42, username: "alice", issuedAt: now, expiresAt: now + 3600))
        #expect(try service.verify(token, now: now + 3599).userID == 42)
    }

    @Test func issuedTokenCarriesTheRequiredClaims() throws {
        let token = service.issue(userID: 42, username: "alice", now: now)
        let payload = try payloadFields(of: token)
        #expect(try payload.string("sub") == "42")
        #expect(try payload.int("user_id") == 42)
        #expect(try payload.string("username") == "alice")
        #expect(try payload.int("iat") == now)
        #expect(try payload.int("exp") == now + 3600)
        #expect(Set(payload.members.keys) == ["sub", "user_id", "username", "iat", "exp"])

        let header = try JSONFields(parsing: try #require(Base64URL.decode(token.split(separator: ".")[0])))
        #expect(try header.string("alg") == "HS256")
        #expect(try header.string("typ") == "JWT")
    }

    @Test func defaultLifetimeIs24Hours() throws {
        let service = TokenService(secret: secret)
        #expect(service.lifetime == 86_400)
        let claims = try service.verify(service.issue(userID: 1, username: "a", now: now), now: now)
        #expect(claims.expiresAt == now + 86_400)
    }

    // MARK: Forged and broken tokens

    @Test func expiredAtExactlyExp() throws {
        let token = service.issue(userID: 1, username: "a", now: now)
        #expect(throws: TokenError.expired) { try service.verify(token, now: now + 3600) }
        #expect(throws: TokenError.expired) { try service.verify(token, now: now + 100_000) }
    }

    @Test func wrongKey() {
        let other = TokenService(secret: Array("another-secret-entirely-123".utf8))
        let token = other.issue(userID: 1, username: "a", now: now)
        #expect(throws: TokenError.badSignature) { try service.verify(token, now: now) }
    }

    @Test func algNoneWithEmptySignature() {
        let payload = #"{"sub":"1","user_id":1,"username":"a","iat":1700000000,"exp":1700003600}"#
        let forged = segment(#"{"alg":"none"}"#) + "." + segment(payload) + "."
        #expect(throws: TokenError.wrongAlgorithm) { try service.verify(forged, now: now) }
        let forgedTyped = segment(#"{"alg":"none","typ":"JWT"}"#) + "." + segment(payload) + "."
        #expect(throws: TokenError.wrongAlgorithm) { try service.verify(forgedTyped, now: now) }
    }

    @Test(arguments: ["HS512", "RS256", "hs256", "none", "HS256 ", ""])
    func otherAlgorithmsAreRefusedEvenWithOurValidHMAC(_ algorithm: String) {
        let payload = #"{"sub":"1","user_id":1,"username":"a","iat":1700000000,"exp":1700003600}"#
        let forged = token(header: #"{"alg":"\#(algorithm)","typ":"JWT"}"#, payload: payload)
        #expect(throws: TokenError.wrongAlgorithm) { try service.verify(forged, now: now) }
    }

    @Test func missingOrNonStringAlgIsRefused() {
        let payload = #"{"sub":"1","user_id":1,"username":"a","iat":1700000000,"exp":1700003600}"#
        #expect(throws: TokenError.wrongAlgorithm) { try service.verify(token(header: #"{"typ":"JWT"}"#, payload: payload), now: now) }
        #expect(throws: TokenError.wrongAlgorithm) { try service.verify(token(header: #"{"alg":256}"#, payload: payload), now: now) }
    }

    @Test func aHandMadeHS256TokenWithOurKeyIsAccepted() throws {
        // The counterpart of the forgeries: the helper itself makes tokens we accept.
        let payload = #"{"sub":"7","user_id":7,"username":"zed","iat":1700000000,"exp":1700003600}"#
        let claims = try service.verify(token(header: #"{"alg":"HS256"}"#, payload: payload), now: now)
        #expect(claims == TokenClaims(userID: 7, username: "zed", issuedAt: 1_700_000_000, expiresAt: 1_700_003_600))
    }

    @Test func tamperedPayload() {
        let genuine = service.issue(userID: 1, username: "alice", now: now)
        let parts = genuine.split(separator: ".")
        let evilPayload = segment(#"{"sub":"2","user_id":2,"username":"bob","iat":1700000000,"exp":1700003600}"#)
        let tampered = parts[0] + "." + evilPayload + "." + parts[2]
        #expect(throws: TokenError.badSignature) { try service.verify(tampered, now: now) }

        let longerLife = segment(#"{"sub":"1","user_id":1,"username":"alice","iat":1700000000,"exp":9999999999}"#)
        #expect(throws: TokenError.badSignature) { try service.verify(parts[0] + "." + longerLife + "." + parts[2], now: now) }
    }

    @Test func tamperedSignature() {
        let genuine = service.issue(userID: 1, username: "alice", now: now)
        var bytes = Array(genuine.utf8)
        let last = bytes.count - 2
        bytes[last] = bytes[last] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(throws: TokenError.badSignature) { try service.verify(String(decoding: bytes, as: UTF8.self), now: now) }
    }

    @Test func truncated() {
        let genuine = service.issue(userID: 1, username: "alice", now: now)
        let parts = genuine.split(separator: ".")
        #expect(throws: TokenError.malformed) { try service.verify(parts[0] + "." + parts[1], now: now) }
        #expect(throws: TokenError.malformed) { try service.verify(String(parts[0]), now: now) }
        #expect(throws: TokenError.badSignature) { try service.verify(parts[0] + "." + parts[1] + ".", now: now) }
        // Any cut of the signature is refused, as malformed or as a bad signature.
        for cut in 1..<parts[2].count {
            let shorter = parts[0] + "." + parts[1] + "." + parts[2].dropLast(cut)
            #expect(throws: TokenError.self) { try service.verify(shorter, now: now) }
        }
        #expect(throws: TokenError.self) { try service.verify(genuine.dropLast(), now: now) }
    }

    @Test func extraSegments() {
        let genuine = service.issue(userID: 1, username: "alice", now: now)
        #expect(throws: TokenError.malformed) { try service.verify(genuine + ".abc", now: now) }
        #expect(throws: TokenError.malformed) { try service.verify(genuine + ".", now: now) }
        #expect(throws: TokenError.malformed) { try service.verify("a." + genuine, now: now) }
    }

    @Test(arguments: ["", ".", "..", "...", "!!!.@@@.###", "a.b.c", "eyJ.eyJ.x y", "e30=.e30=.AAAA", "e30.e30.+/+/",
                      "bm90IGpzb24.e30.AAAA"])
    func garbage(_ text: String) {
        #expect(throws: TokenError.malformed) { try service.verify(text, now: now) }
    }

    @Test func oversizedTokenIsMalformed() {
        let big = String(repeating: "A", count: 5000) + ".e30.AAAA"
        #expect(throws: TokenError.malformed) { try service.verify(big, now: now) }
    }

    @Test(arguments: [
        #"{"username":"a","exp":1700003600}"#,                               // no user_id
        #"{"user_id":1,"exp":1700003600}"#,                                  // no username
        #"{"user_id":1,"username":"a"}"#,                                    // no exp
        #"{"user_id":"1","username":"a","exp":1700003600}"#,                 // user_id a string
        #"{"user_id":0,"username":"a","exp":1700003600}"#,                   // not a positive id
        #"{"user_id":9223372036854775808,"username":"a","exp":1700003600}"#, // beyond Int64
        #"{"sub":"2","user_id":1,"username":"a","exp":1700003600}"#,         // sub disagrees
        #"{"user_id":1,"username":"a","exp":1.7e9}"#,                        // exp not an integer
        #"[1]"#,                                                             // not an object
    ])
    func signedButBadClaims(_ payload: String) {
        let forged = token(header: #"{"alg":"HS256","typ":"JWT"}"#, payload: payload)
        #expect(throws: TokenError.badClaims) { try service.verify(forged, now: now) }
    }

    @Test func algorithmIsCheckedBeforeSignature() {
        // An `alg: none` token with a garbage signature still gets the algorithm error.
        let forged = segment(#"{"alg":"none"}"#) + "." + segment(#"{"user_id":1}"#) + ".AAAA"
        #expect(throws: TokenError.wrongAlgorithm) { try service.verify(forged, now: now) }
    }

    // MARK: Authorization header

    @Test func bearerToken() {
        #expect(TokenService.bearerToken(fromAuthorization: "Bearer abc.def.ghi") == "abc.def.ghi")
        #expect(TokenService.bearerToken(fromAuthorization: "bearer abc") == "abc")
        #expect(TokenService.bearerToken(fromAuthorization: "BEARER abc") == "abc")
        #expect(TokenService.bearerToken(fromAuthorization: "  Bearer    abc") == "abc")
        #expect(TokenService.bearerToken(fromAuthorization: "Bearer ") == nil)
        #expect(TokenService.bearerToken(fromAuthorization: "Bearer    ") == nil)
        #expect(TokenService.bearerToken(fromAuthorization: "Bearer") == nil)
        #expect(TokenService.bearerToken(fromAuthorization: "Bearerabc") == nil)
        #expect(TokenService.bearerToken(fromAuthorization: "Basic YWxhZGRpbjpvcGVuc2VzYW1l") == nil)
        #expect(TokenService.bearerToken(fromAuthorization: "") == nil)
        #expect(TokenService.bearerToken(fromAuthorization: "abc.def.ghi") == nil)
    }
}
