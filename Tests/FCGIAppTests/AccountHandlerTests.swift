import Domain
@testable import FCGIApp
import Storage
import Testing

/// Passwords, sessions, rate limits, Unicode names and duplicate keys, in-process.
@Suite struct AccountHandlerTests {
    func setPassword(_ app: TestApp, _ token: String, _ json: String) -> TestResponse {
        app.request("PUT", "/users/me/password", token: token, json: json)
    }

    @Test func tokensNameASessionAndLogoutRevokesIt() throws {
        let app = try TestApp()
        let (token, _) = try app.login("alice")
        let claims = try app.tokens.verify(token, now: app.clock.now)
        #expect(claims.sessionID != nil)
        #expect(app.request("GET", "/chats", token: token).status == 200)  // now in this worker's cache
        #expect(app.request("POST", "/logout", token: token).status == 204)
        let refused = app.request("GET", "/chats", token: token)
        #expect(refused.status == 401)
        #expect(refused.error == "session revoked; log in again")
        #expect(try app.count("sessions") == 1)
    }

    @Test func tokensWithoutASessionAreRefused() throws {
        let app = try TestApp()
        let (token, id) = try app.login("bob")
        let old = app.tokens.issue(userID: id, username: "bob", now: app.clock.now)
        #expect(app.request("GET", "/chats", token: old).error == "token predates sessions; log in again")
        let foreign = app.tokens.issue(userID: id, username: "bob", sessionID: 999, now: app.clock.now)
        #expect(app.request("GET", "/chats", token: foreign).status == 401)
        #expect(app.request("GET", "/chats", token: token).status == 200)
    }

    @Test func logoutAllAndSessionsList() throws {
        let app = try TestApp()
        let (first, _) = try app.login("carol")
        let (second, _) = try app.login("carol")
        let list = try app.request("GET", "/users/me/sessions", token: first).json().array
        #expect(list.count == 2)
        #expect(list.map(\.keys) == Array(repeating: ["id", "created_at", "last_used_at", "expires_at", "current"], count: 2))
        #expect(list.map { $0["current"] } == [.bool(false), .bool(true)])
        #expect(app.request("POST", "/logout/all", token: second).status == 204)
        #expect(app.request("GET", "/chats", token: first).status == 401)
        #expect(app.request("GET", "/chats", token: second).status == 401)
    }

    @Test func passwordLoginOneMessageForEveryCause() throws {
        let app = try TestApp()
        let (token, id) = try app.login("dave")
        #expect(setPassword(app, token, #"{"password":"short"}"#).status == 400)
        #expect(setPassword(app, token, #"{"password":"long enough"}"#).status == 204)
        let refusals = [#"{"username":"dave"}"#, #"{"username":"dave","password":"wrong one"}"#,
                        #"{"username":"nobody","password":"long enough"}"#]
        for body in refusals {
            let response = app.request("POST", "/login", json: body)
            #expect(response.status == 401)
            #expect(response.error == "wrong username or password")
        }
        #expect(try app.store.user(username: "nobody") == nil)
        let ok = app.request("POST", "/login", json: #"{"username":"DAVE","password":"long enough"}"#)
        #expect(ok.status == 200)
        #expect(try app.tokens.verify(ok.fields().string("token"), now: app.clock.now).userID == id)
    }

    @Test func passwordChangeNeedsTheCurrentOneAndRevokesOtherSessions() throws {
        let app = try TestApp()
        let (token, _) = try app.login("erin")
        #expect(setPassword(app, token, #"{"password":"first secret"}"#).status == 204)
        let other = try app.request("POST", "/login", json: #"{"username":"erin","password":"first secret"}"#)
            .fields().string("token")
        #expect(app.request("GET", "/chats", token: other).status == 200)
        #expect(setPassword(app, token, #"{"password":"second secret"}"#).status == 400)
        #expect(setPassword(app, token, #"{"password":"second secret","current_password":"nope nope"}"#).status == 403)
        #expect(setPassword(app, token, #"{"password":"second secret","current_password":"first secret"}"#).status == 204)
        #expect(app.request("GET", "/chats", token: other).status == 401)
        #expect(app.request("GET", "/chats", token: token).status == 200)
    }

    @Test func passwordSlotsRefuseWhenFull() throws {
        let slots = PasswordSlots(hasher: try TestApp.hasher.get(), maxRunning: 1, maxAdmitted: 1)
        let inner: Result<Bool, any Error> = try slots.run { _ in Result { try slots.run { _ in true } } }
        guard case .failure(let error as HTTPError) = inner else { Issue.record("expected a refusal"); return }
        #expect(error.status == .serviceUnavailable && error.retryAfter == 1)
        #expect(try slots.run { _ in true })  // the slot is free again
    }

    @Test func sendsOverTheLimitAre429WithRetryAfterAndNotStored() throws {
        let app = try TestApp(environment: ["RATE_SEND": "0.001/3"])
        let (token, _) = try app.login("frank")
        let (_, peer) = try app.login("grace")
        let chat = try app.request("POST", "/chats/initiate", token: token, json: #"{"target_id":\#(peer)}"#)
            .fields().int("chat_id")
        var statuses: [Int] = []
        for index in 0..<5 {
            statuses.append(app.request("POST", "/chats/\(chat)/messages", token: token, json: #"{"content":"m\#(index)"}"#).status)
        }
        let legacy = app.request("POST", "/send", token: token, json: #"{"receiver_username":"grace","content":"x"}"#)
        #expect(statuses == [200, 200, 200, 429, 429])
        #expect(legacy.status == 429)
        #expect(legacy.headers.contains { $0.0 == "Retry-After" && Int($0.1).map { $0 >= 1 } == true })
        #expect(legacy.error?.hasPrefix("too many messages; retry in") == true)
        #expect(try app.count("messages") == 3)
    }

    @Test func loginsAreLimitedPerUsername() throws {
        let app = try TestApp(environment: ["RATE_LOGIN": "0.001/2"])
        _ = try app.login("heidi")
        _ = try app.login("Heidi")
        let refused = app.request("POST", "/login", json: #"{"username":"HEIDI"}"#)
        #expect(refused.status == 429)
        #expect(app.request("POST", "/login", json: #"{"username":"ivan"}"#).status == 200)
    }

    @Test func unicodeNamesAreOneUserUnderCaseFolding() throws {
        let app = try TestApp()
        let (_, alice) = try app.login("Алиса")
        #expect(try app.login("алиса").id == alice)
        let (_, strasse) = try app.login("Straße")
        #expect(try app.login("STRASSE").id == strasse)
        let (token, _) = try app.login("jose\u{301}")  // decomposed
        #expect(try app.store.user(username: "josé")?.username == "jos\u{E9}")
        let found = try app.request("GET", "/users?username=%D0%90%D0%9B%D0%98", token: token).json().array  // "АЛИ"
        #expect(found.map { $0["id"] } == [.int(alice)])
        #expect(try app.request("GET", "/users/%D0%B0%D0%BB%D0%B8%D1%81%D0%B0", token: token).json()["id"] == .int(alice))
    }

    @Test func duplicateKeysAre400() throws {
        let app = try TestApp()
        let response = app.request("POST", "/login", json: #"{"username":"a","username":"b"}"#)
        #expect(response.status == 400)
        #expect(response.error?.contains("duplicate key \"username\"") == true)
        #expect(try app.count("users") == 0)
    }
}
