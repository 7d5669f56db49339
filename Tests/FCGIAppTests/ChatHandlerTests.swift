import Domain
@testable import FCGIApp
import Testing

@Suite struct ChatHandlerTests {
    private let app: TestApp
    private let alice: (token: String, id: Int64)
    private let bob: (token: String, id: Int64)
    private let carol: (token: String, id: Int64)

    init() throws {
        app = try TestApp()
        alice = try app.login("alice")
        bob = try app.login("bob")
        carol = try app.login("carol")
    }

    private func initiate(_ token: String, _ body: String) -> TestResponse {
        app.request("POST", "/chats/initiate", token: token, json: body)
    }

    @Test func initiateByUsernameThenByIDFromTheOtherSide() throws {
        let created = initiate(alice.token, #"{"target_username":"bob"}"#)
        #expect(created.status == 200)
        let chatID = try created.fields().int("chat_id")
        #expect(created.text == #"{"chat_id":\#(chatID),"status":"created"}"#)
        #expect(initiate(alice.token, #"{"target_username":"BOB"}"#).text == #"{"chat_id":\#(chatID),"status":"exists"}"#)
        #expect(initiate(bob.token, #"{"target_id":\#(alice.id)}"#).text == #"{"chat_id":\#(chatID),"status":"exists"}"#)
        #expect(try app.count("chats") == 1)
    }

    @Test func initiateWithYourself() throws {
        let response = initiate(alice.token, #"{"target_id":\#(alice.id)}"#)
        #expect(response.status == 200)
        let chatID = try response.fields().int("chat_id")
        let chat = try app.request("GET", "/chats/\(chatID)", token: alice.token).json()
        #expect(chat["participants"] == .array([.int(alice.id)]))
    }

    @Test(arguments: [
        (#"{"target_username":"nobody"}"#, 404, "user nobody not found"),
        (#"{"target_id":999}"#, 404, "user 999 not found"),
        (#"{"target_username":"bob","target_id":2}"#, 400, "give target_username or target_id, not both"),
        ("{}", 400, "target_username or target_id is required"),
        (#"{"target_username":null}"#, 400, "target_username or target_id is required"),
        (#"{"target_id":"2"}"#, 400, "target_id must be an integer, got string"),
        (#"{"target_id":0}"#, 400, "target_id must be a positive integer"),
        (#"{"target_id":2.5}"#, 400, "target_id must be an integer within 64 bits"),
        (#"{"target_id":99999999999999999999}"#, 400, "target_id must be an integer within 64 bits"),
        (#"{"target_username":"1abc"}"#, 400, "username must start with a letter (of any script), not '1' (U+0031)"),
        (#"{"target_username":7}"#, 400, "target_username must be a string, got number"),
        ("not json", 400, "malformed JSON: invalid literal"),
    ])
    func badInitiates(_ body: String, _ status: Int, _ message: String) throws {
        let response = initiate(alice.token, body)
        #expect(response.status == status)
        #expect(response.error == message)
        #expect(try app.count("chats") == 0)
    }

    @Test func listShowsTheCallersChatsWithTheSeedShape() throws {
        let direct = try initiate(alice.token, #"{"target_username":"bob"}"#).fields().int("chat_id")
        _ = initiate(bob.token, #"{"target_username":"carol"}"#)
        let response = app.request("GET", "/chats", token: alice.token)
        #expect(response.status == 200)
        let chats = try response.json().array
        #expect(chats.count == 1)
        let chat = try #require(chats.first)
        #expect(chat.keys == chatKeys)
        #expect(chat["id"] == .int(direct))
        #expect(chat["name"] == .null)
        #expect(chat["chat_type"] == .string("direct"))
        #expect(chat["participants"] == .array([.int(alice.id), .int(bob.id)]))
        guard case .string(let createdAt)? = chat["created_at"] else {
            Issue.record("created_at is not a string")
            return
        }
        #expect(createdAt.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z/) != nil)

        #expect(try JSONParser.parse(app.request("GET", "/chats", token: try app.login("dave").token).body) == .array([]))
    }

    @Test func showIsForMembersOnly() throws {
        let chatID = try initiate(alice.token, #"{"target_username":"bob"}"#).fields().int("chat_id")
        let member = app.request("GET", "/chats/\(chatID)", token: bob.token)
        #expect(member.status == 200)
        #expect(try member.json().keys == chatKeys)
        #expect(try member.json() == (try app.request("GET", "/chats", token: bob.token).json().array.first))

        let outsider = app.request("GET", "/chats/\(chatID)", token: carol.token)
        #expect(outsider.status == 403)
        #expect(outsider.error == "you are not a member of chat \(chatID)")

        let unknown = app.request("GET", "/chats/4242", token: alice.token)
        #expect(unknown.status == 404)
        #expect(unknown.error == "chat 4242 not found")
    }

    @Test(arguments: ["abc", "0", "-1", "1.0", "99999999999999999999", "%31x"])
    func badChatIDsAre400(_ id: String) {
        for (method, suffix) in [("GET", ""), ("GET", "/messages"), ("POST", "/messages")] {
            let response = app.request(method, "/chats/\(id)\(suffix)", token: alice.token, json: #"{"content":"x"}"#)
            #expect(response.status == 400, "\(method) /chats/\(id)\(suffix)")
            #expect(response.error?.hasPrefix("id must be a positive integer") == true)
        }
    }

    @Test func createGroupIncludesTheCreator() throws {
        let response = app.request("POST", "/chats", token: alice.token,
                                   json: #"{"name":"Team","participants":[\#(bob.id),\#(carol.id)]}"#)
        #expect(response.status == 200)
        let chat = try response.json()
        #expect(chat.keys == chatKeys)
        #expect(chat["name"] == .string("Team"))
        #expect(chat["chat_type"] == .string("group"))
        #expect(chat["participants"] == .array([.int(alice.id), .int(bob.id), .int(carol.id)]))
        guard case .int(let id)? = chat["id"] else {
            Issue.record("no id")
            return
        }
        #expect(app.request("GET", "/chats/\(id)", token: carol.token).status == 200)
        #expect(try app.request("GET", "/chats", token: carol.token).json().array.count == 1)
    }

    @Test(arguments: [
        (#"{"name":"Team","participants":[999]}"#, "unknown participant ids: 999"),
        (#"{"name":"","participants":[2]}"#, "name must not be empty"),
        (#"{"participants":[2]}"#, "name is required"),
        (#"{"name":"Team"}"#, "participants is required"),
        (#"{"name":"Team","participants":["bob"]}"#, "participants must be positive integer user ids"),
        (#"{"name":"Team","participants":2}"#, "participants must be an array, got number"),
    ])
    func badGroupsAre400AndWriteNothing(_ body: String, _ message: String) throws {
        let response = app.request("POST", "/chats", token: alice.token, json: body)
        #expect(response.status == 400)
        #expect(response.error == message)
        #expect(try app.count("chats") == 0)
        #expect(try app.count("chat_members") == 0)
    }
}
