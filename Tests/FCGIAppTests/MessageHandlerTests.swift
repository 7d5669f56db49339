import Domain
@testable import FCGIApp
import Testing

@Suite struct MessageHandlerTests {
    private let app: TestApp
    private let alice: (token: String, id: Int64)
    private let bob: (token: String, id: Int64)
    private let carol: (token: String, id: Int64)
    private let chatID: Int64

    init() throws {
        app = try TestApp()
        alice = try app.login("alice")
        bob = try app.login("bob")
        carol = try app.login("carol")
        chatID = try app.request("POST", "/chats/initiate", token: alice.token, json: #"{"target_username":"bob"}"#)
            .fields().int("chat_id")
    }

    private func post(_ token: String, _ body: String, chat: Int64? = nil) -> TestResponse {
        app.request("POST", "/chats/\(chat ?? chatID)/messages", token: token, json: body)
    }

    @Test func postReturnsTheSeedMessage() throws {
        let response = post(alice.token, #"{"content":"hello \"bob\""}"#)
        #expect(response.status == 200)
        let message = try response.json()
        #expect(message.keys == messageKeys)
        #expect(message["chat_id"] == .int(chatID))
        #expect(message["sender_id"] == .int(alice.id))
        #expect(message["content"] == .string("hello \"bob\""))
        #expect(message["files"] == .array([]))
        guard case .int(let id)? = message["id"], case .string(let timestamp)? = message["timestamp"] else {
            Issue.record("id or timestamp missing: \(response.text)")
            return
        }
        #expect(response.text == #"{"id":\#(id),"chat_id":\#(chatID),"sender_id":\#(alice.id),"content":"hello \"bob\"","timestamp":"\#(timestamp)","files":[]}"#)
    }

    @Test func nonceMakesASendIdempotent() throws {
        let first = post(alice.token, #"{"content":"once","nonce":"abc"}"#)
        let second = post(alice.token, #"{"content":"once","nonce":"abc"}"#)
        #expect(first.status == 200)
        #expect(second.status == 200)
        #expect(first.text == second.text)
        #expect(try app.count("messages") == 1)
    }

    @Test func membershipRules() throws {
        let outsider = post(carol.token, #"{"content":"hi"}"#)
        #expect(outsider.status == 403)
        #expect(outsider.error == "you are not a member of chat \(chatID)")
        let unknown = post(alice.token, #"{"content":"hi"}"#, chat: 4242)
        #expect(unknown.status == 404)
        #expect(unknown.error == "chat 4242 not found")
        #expect(try app.count("messages") == 0)

        #expect(app.request("GET", "/chats/\(chatID)/messages", token: carol.token).status == 403)
        #expect(app.request("GET", "/chats/4242/messages", token: alice.token).status == 404)
    }

    @Test(arguments: [
        ("", "request body must be a JSON object"),
        ("{}", "a message needs non-empty content or files"),
        (#"{"content":"   "}"#, "a message needs non-empty content or files"),
        (#"{"content":5}"#, "content must be a string, got number"),
        (#"{"content":"x","nonce":""}"#, "nonce must be 1 to 64 characters"),
        (#"{"content":"\#(String(repeating: "x", count: 4001))"}"#, "content must be at most 4000 characters"),
        (#"{"content":"x","files":[{"url":"../x"}]}"#, #"file url "../x" is not an upload of this server"#),
        (#"{"content":"x","files":[{"url":"/uploads/../etc/passwd"}]}"#, #"file url "/uploads/../etc/passwd" is not an upload of this server"#),
        (#"{"content":"x","files":[{"url":"http://evil/x"}]}"#, #"file url "http://evil/x" is not an upload of this server"#),
        (#"{"content":"x","files":[{"url":"/uploads/made-up.png"}]}"#, "file /uploads/made-up.png is not one of your uploads"),
        (#"{"content":"x","files":[{"id":12345}]}"#, "file 12345 is not one of your uploads"),
        (#"{"content":"x","files":"a"}"#, "files must be an array, got string"),
        ("{\"content\":\"a\u{1}b\"}", "malformed JSON: control character in string"),
    ])
    func badSendsAre400AndStoreNothing(_ body: String, _ message: String) throws {
        let response = post(alice.token, body)
        #expect(response.status == 400)
        #expect(response.error == message)
        #expect(try app.count("messages") == 0)
    }

    @Test func historyPagesAscending() throws {
        var ids: [Int64] = []
        for index in 1...5 {
            ids.append(try post(index % 2 == 0 ? bob.token : alice.token, #"{"content":"m\#(index)"}"#).fields().int("id"))
        }
        let all = app.request("GET", "/chats/\(chatID)/messages", token: bob.token)
        #expect(all.status == 200)
        let page = try all.json()
        #expect(page.keys == ["chat_id", "messages"])
        #expect(page["chat_id"] == .int(chatID))
        #expect(page["messages"]?.array.map(\.keys) == Array(repeating: messageKeys, count: 5))
        #expect(page["messages"]?.array.map { $0["id"] } == ids.map { .int($0) })
        #expect(page["messages"]?.array.map { $0["content"] } == (1...5).map { .string("m\($0)") })

        func idsOf(_ query: String) throws -> [Int64] {
            let response = app.request("GET", "/chats/\(chatID)/messages?\(query)", token: alice.token)
            try #require(response.status == 200, "\(query): \(response.text)")
            return try response.json()["messages"]?.array.compactMap { value -> Int64? in
                if case .int(let id)? = value["id"] { return id }
                return nil
            } ?? []
        }
        #expect(try idsOf("limit=2") == Array(ids[3...4]))
        #expect(try idsOf("limit=2&before_id=\(ids[3])") == Array(ids[1...2]))
        #expect(try idsOf("after_id=\(ids[1])&limit=2") == Array(ids[2...3]))
        #expect(try idsOf("after_id=\(ids[0])&before_id=\(ids[3])") == Array(ids[1...2]))
        #expect(try idsOf("after_id=\(ids[4])") == [])
        #expect(try idsOf("after_id=0&limit=2") == Array(ids[0...1]))
        #expect(try idsOf("limit=1000") == ids)
    }

    @Test(arguments: ["limit=0", "limit=1001", "limit=-1", "limit=abc", "limit=", "limit=1.5", "limit=99999999999999999999",
                      "before_id=0", "before_id=abc", "before_id=-5", "after_id=-5", "after_id=", "after_id=99999999999999999999",
                      "after_id=1e3"])
    func badPagingIs400(_ query: String) {
        let response = app.request("GET", "/chats/\(chatID)/messages?\(query)", token: alice.token)
        #expect(response.status == 400)
        #expect(response.error != nil)
    }

    @Test func emptyHistory() {
        #expect(app.request("GET", "/chats/\(chatID)/messages", token: alice.token).text == #"{"chat_id":\#(chatID),"messages":[]}"#)
    }
}

@Suite struct LegacyHandlerTests {
    private let app: TestApp
    private let alice: (token: String, id: Int64)
    private let bob: (token: String, id: Int64)

    init() throws {
        app = try TestApp()
        alice = try app.login("alice")
        bob = try app.login("bob")
    }

    @Test func sendThenHistoryFromBothSides() throws {
        let sent = app.request("POST", "/send", token: alice.token, json: #"{"receiver_username":"bob","content":"hi bob"}"#)
        #expect(sent.status == 200)
        #expect(sent.text == #"{"status":"sent"}"#)
        let reply = app.request("POST", "/send", token: bob.token, json: #"{"receiver_username":"alice","content":"hi alice"}"#)
        #expect(reply.text == #"{"status":"sent"}"#)
        #expect(try app.count("chats") == 1)

        let fromAlice = try app.request("GET", "/history/bob", token: alice.token).json().array
        let fromBob = try app.request("GET", "/history/alice", token: bob.token).json().array
        #expect(fromAlice == fromBob)
        #expect(fromAlice.map(\.keys) == [legacyMessageKeys, legacyMessageKeys])
        #expect(fromAlice.map { $0["sender_id"] } == [.int(alice.id), .int(bob.id)])
        #expect(fromAlice.map { $0["receiver_id"] } == [.int(bob.id), .int(alice.id)])
        #expect(fromAlice.map { $0["content"] } == [.string("hi bob"), .string("hi alice")])

        // The same messages are in the chat's history in the current shape.
        let chats = try app.request("GET", "/chats", token: alice.token).json().array
        #expect(chats.count == 1)
        #expect(chats.first?["chat_type"] == .string("direct"))
    }

    @Test func sendWithANonceIsStoredOnce() throws {
        for _ in 0..<2 {
            let response = app.request("POST", "/send", token: alice.token, json: #"{"receiver_username":"bob","content":"x","nonce":"n"}"#)
            #expect(response.text == #"{"status":"sent"}"#)
        }
        #expect(try app.count("messages") == 1)
    }

    @Test func sendToYourself() throws {
        #expect(app.request("POST", "/send", token: alice.token, json: #"{"receiver_username":"alice","content":"note"}"#).status == 200)
        let history = try app.request("GET", "/history/alice", token: alice.token).json().array
        #expect(history.count == 1)
        #expect(history.first?["sender_id"] == .int(alice.id))
        #expect(history.first?["receiver_id"] == .int(alice.id))
    }

    @Test(arguments: [
        (#"{"receiver_username":"nobody","content":"x"}"#, 404, "user nobody not found"),
        (#"{"receiver_username":"bob"}"#, 400, "content is required"),
        (#"{"receiver_username":"bob","content":""}"#, 400, "a message needs non-empty content or files"),
        (#"{"receiver_username":"bob","content":7}"#, 400, "content must be a string, got number"),
        (#"{"content":"x"}"#, 400, "receiver_username is required"),
        (#"{"receiver_username":"1x","content":"x"}"#, 400, "username must start with a letter (of any script), not '1' (U+0031)"),
        ("[1]", 400, "expected a JSON object, got array"),
    ])
    func badSends(_ body: String, _ status: Int, _ message: String) throws {
        let response = app.request("POST", "/send", token: alice.token, json: body)
        #expect(response.status == status)
        #expect(response.error == message)
        #expect(try app.count("messages") == 0)
        #expect(try app.count("chats") == 0)
    }

    @Test func historyEdgeCases() throws {
        #expect(app.request("GET", "/history/bob", token: alice.token).text == "[]")
        let unknown = app.request("GET", "/history/nobody", token: alice.token)
        #expect(unknown.status == 404)
        #expect(unknown.error == "user nobody not found")
        #expect(app.request("GET", "/history/1abc", token: alice.token).status == 400)
        #expect(app.request("GET", "/history/bob?limit=0", token: alice.token).status == 400)
    }

    @Test func historyPages() throws {
        for index in 1...3 {
            _ = app.request("POST", "/send", token: alice.token, json: #"{"receiver_username":"bob","content":"m\#(index)"}"#)
        }
        let page = try app.request("GET", "/history/bob?limit=2", token: alice.token).json().array
        #expect(page.map { $0["content"] } == [.string("m2"), .string("m3")])
    }
}

@Suite struct StoredTextHandlerTests {
    /// NUL is valid JSON, but the API refuses it in every string field (issue 2, "Bad
    /// input"): 400, and nothing is stored.
    @Test func nulInContentIsRefusedAndNothingIsStored() throws {
        let app = try TestApp()
        let alice = try app.login("alice")
        let chatID = try app.request("POST", "/chats/initiate", token: alice.token, json: #"{"target_username":"alice"}"#)
            .fields().int("chat_id")
        let posted = app.request("POST", "/chats/\(chatID)/messages", token: alice.token, json: #"{"content":"a\u0000b"}"#)
        #expect(posted.status == 400)
        #expect(posted.error == "content must not contain NUL characters")
        let history = try app.request("GET", "/chats/\(chatID)/messages", token: alice.token).json()
        #expect(history["messages"]?.array.isEmpty == true)
    }
}
