import Domain
@testable import FCGIApp
import Foundation
import Testing

@Suite struct AuthHandlerTests {
    private let app: TestApp

    init() throws {
        app = try TestApp()
    }

    @Test func loginReturnsOnlyAToken() throws {
        let response = app.request("POST", "/login", json: #"{"username":"alice"}"#)
        #expect(response.status == 200)
        #expect(response.contentType == "application/json; charset=utf-8")
        #expect(try response.json().keys == ["token"])
        let claims = try app.tokens.verify(response.fields().string("token"), now: app.clock.now)
        #expect(claims.username == "alice")
        #expect(claims.issuedAt == app.clock.now)
        #expect(claims.expiresAt == app.clock.now + 86_400)
        #expect(try app.store.user(id: claims.userID)?.username == "alice")
    }

    @Test func loginCreatesTheUserOnceCaseInsensitively() throws {
        let first = try app.login("alice")
        let again = try app.login("alice")
        let shouted = try app.login("ALICE")
        #expect(again.id == first.id)
        #expect(shouted.id == first.id)
        #expect(try app.tokens.verify(shouted.token, now: app.clock.now).username == "alice")
        #expect(try app.count("users") == 1)
        #expect(try app.login("bob").id != first.id)
    }

    @Test(arguments: [
        ("", "request body must be a JSON object"),
        ("null", "expected a JSON object, got null"),
        ("[]", "expected a JSON object, got array"),
        (#""alice""#, "expected a JSON object, got string"),
        ("{", "malformed JSON: expected a string key"),
        ("[1", "malformed JSON: unexpected end of input"),
        (#"{"username":"alice"} x"#, "malformed JSON: unexpected data after the value"),
        ("{}", "username is required"),
        (#"{"username":null}"#, "username is required"),
        (#"{"username":5}"#, "username must be a string, got number"),
        (#"{"username":["alice"]}"#, "username must be a string, got array"),
        (#"{"username":""}"#, "username must not be empty"),
        (#"{"username":"1abc"}"#, "username must start with a letter (of any script), not '1' (U+0031)"),
        (#"{"username":"a\u0000b"}"#, "username must not contain NUL characters"),
        (#"{"username":"al ice"}"#, "username may contain only letters, digits, '_', '.' and '-'; U+0020 is not allowed"),
        (#"{"username":"\#(String(repeating: "a", count: 5000))"}"#, "username must be at most 32 characters"),
    ])
    func badLoginBodiesAre400AndWriteNothing(_ body: String, _ message: String) throws {
        let response = app.request("POST", "/login", json: body)
        #expect(response.status == 400)
        #expect(response.error == message)
        #expect(try app.count("users") == 0)
    }

    @Test func nonUTF8BodyIs400() throws {
        var body = Array(#"{"username":"al"#.utf8)
        body += [0xC3, 0x28]
        body += Array(#"ice"}"#.utf8)
        let response = app.handle("POST", "/login", body: BytesBody(body))
        #expect(response.status == 400)
        #expect(response.error?.hasPrefix("malformed JSON") == true)
        #expect(try app.count("users") == 0)
    }

    @Test func deeplyNestedBodyIs400() throws {
        let body = String(repeating: "[", count: 10_000)
        let response = app.request("POST", "/login", json: body)
        #expect(response.status == 400)
        #expect(response.error == "malformed JSON: nesting too deep")
    }

    @Test func oversizedBodyIs413() throws {
        let padding = String(repeating: " ", count: 256 * 1024)
        let response = app.request("POST", "/login", json: #"{"username":"alice"}"# + padding)
        #expect(response.status == 413)
        #expect(response.error == "request body exceeds 262144 bytes")
        #expect(try app.count("users") == 0)
    }

    @Test func loginIsNotAGet() {
        let response = app.request("GET", "/login")
        #expect(response.status == 405)
        #expect(response.error == "GET is not allowed on /login")
    }

    @Test func unknownEndpointIs404() {
        let response = app.request("GET", "/nope")
        #expect(response.status == 404)
        #expect(response.error == "no such endpoint: GET /nope")
    }

    @Test func malformedPathIs400() {
        let response = app.request("GET", "/users/%zz")
        #expect(response.status == 400)
        #expect(response.error == "malformed path")
    }
}

@Suite struct AuthenticationTests {
    private let app: TestApp
    private let alice: (token: String, id: Int64)

    init() throws {
        app = try TestApp()
        alice = try app.login("alice")
    }

    private func expect401(_ headers: [String: String], _ message: String,
                           sourceLocation: SourceLocation = #_sourceLocation) {
        for (method, uri) in [("GET", "/chats"), ("POST", "/chats/initiate"), ("GET", "/chats/1/messages"),
                              ("POST", "/send"), ("GET", "/history/alice"), ("PATCH", "/users/me"), ("GET", "/users?username=a"),
                              ("POST", "/upload"), ("GET", "/users/alice")] {
            let response = app.handle(method, uri, headers: headers, body: BytesBody(#"{"target_username":"alice"}"#))
            #expect(response.status == 401, "\(method) \(uri)", sourceLocation: sourceLocation)
            #expect(response.error == message, "\(method) \(uri)", sourceLocation: sourceLocation)
        }
    }

    @Test func validTokenIsAccepted() {
        #expect(app.request("GET", "/chats", token: alice.token).status == 200)
    }

    @Test func missingHeader() {
        for (method, uri) in [("GET", "/chats"), ("POST", "/chats/initiate"), ("POST", "/send"), ("PATCH", "/users/me")] {
            let response = app.handle(method, uri, body: BytesBody("{}"))
            #expect(response.status == 401)
            #expect(response.error == "missing Authorization: Bearer token")
        }
    }

    @Test func notABearerHeader() {
        expect401(["Authorization": "Basic YWxpY2U6c2VjcmV0"], "Authorization header must be 'Bearer <token>'")
        expect401(["Authorization": alice.token], "Authorization header must be 'Bearer <token>'")
        expect401(["Authorization": "Bearer "], "Authorization header must be 'Bearer <token>'")
    }

    @Test func garbageToken() {
        expect401(["Authorization": "Bearer not.a.token"], "malformed token")
        expect401(["Authorization": "Bearer " + alice.token + ".extra"], "malformed token")
    }

    @Test func expiredToken() {
        app.clock.now += 86_400
        expect401(["Authorization": "Bearer " + alice.token], "token expired")
    }

    @Test func tokenSignedWithAnotherKey() {
        let forged = TokenService(secret: Array("some-other-secret-0123456789".utf8)).issue(userID: alice.id, username: "alice",
                                                                                            now: app.clock.now)
        expect401(["Authorization": "Bearer " + forged], "invalid token signature")
    }

    @Test func algNoneToken() {
        let header = Base64URL.encode(Array(#"{"alg":"none"}"#.utf8))
        let payload = Base64URL.encode(Array(#"{"sub":"1","user_id":1,"username":"alice","iat":1771502400,"exp":1871502400}"#.utf8))
        expect401(["Authorization": "Bearer \(header).\(payload)."], "token algorithm must be HS256")
    }

    @Test func tokenOfAUserThatDoesNotExist() {
        // Signed with our key, for a session this database never had (another database
        // under the same secret).
        let ghost = app.tokens.issue(userID: 999, username: "ghost", sessionID: 999, now: app.clock.now)
        expect401(["Authorization": "Bearer " + ghost], "the token's session no longer exists; log in again")
    }

    @Test func lowerCaseSchemeAndHeaderNameWork() {
        let response = app.handle("GET", "/chats", headers: ["authorization": "bearer " + alice.token])
        #expect(response.status == 200)
    }
}
