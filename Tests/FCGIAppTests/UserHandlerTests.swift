import Domain
@testable import FCGIApp
import Testing

@Suite struct UserHandlerTests {
    private let app: TestApp
    private let alice: (token: String, id: Int64)

    init() throws {
        app = try TestApp()
        alice = try app.login("alice")
    }

    @Test func showByUsernameAndByIDHaveTheExactSeedShape() throws {
        let expected = #"{"id":\#(alice.id),"username":"alice","display_name":null,"bio":null,"image_id":null}"#
        let byName = app.request("GET", "/users/alice")
        #expect(byName.status == 200)
        #expect(byName.text == expected)
        let byID = app.request("GET", "/users/\(alice.id)")
        #expect(byID.status == 200)
        #expect(byID.text == expected)
        #expect(app.request("GET", "/users/ALICE").text == expected)
        #expect(app.request("GET", "/users/al%69ce").text == expected)
        #expect(app.request("GET", "/users/alice", token: alice.token).text == expected)
    }

    @Test func showUnknownIs404() {
        let byID = app.request("GET", "/users/999")
        #expect(byID.status == 404)
        #expect(byID.error == "user 999 not found")
        let byName = app.request("GET", "/users/nobody")
        #expect(byName.status == 404)
        #expect(byName.error == "user nobody not found")
    }

    @Test(arguments: ["99999999999999999999", "0", "1a", "-1", "_x", "a%20b", "%F0%9F%98%80", String(repeating: "a", count: 5000)])
    func showBadReferenceIs400(_ reference: String) {
        let response = app.request("GET", "/users/\(reference)")
        #expect(response.status == 400)
        #expect(response.error != nil)
    }

    @Test func searchFindsSubstringsWithTheSeedShape() throws {
        _ = try app.login("malice")
        _ = try app.login("bob")
        let response = app.request("GET", "/users?username=LIC", token: alice.token)
        #expect(response.status == 200)
        let users = try response.json().array
        #expect(users.map(\.keys) == [userKeys, userKeys])
        #expect(users.map { $0["username"] } == [.string("alice"), .string("malice")])
        #expect(try JSONParser.parse(app.request("GET", "/users?username=zzz", token: alice.token).body) == .array([]))
    }

    @Test func searchIsBoundedTo50() throws {
        for index in 1...60 { _ = try app.store.login(username: "user\(index)") }
        let response = app.request("GET", "/users?username=user", token: alice.token)
        #expect(response.status == 200)
        #expect(try response.json().array.count == 50)
    }

    @Test func searchNeedsAFragment() {
        for uri in ["/users", "/users?username=", "/users?other=a", "/users?username=" + String(repeating: "a", count: 33)] {
            let response = app.request("GET", uri, token: alice.token)
            #expect(response.status == 400, "\(uri)")
            #expect(response.error != nil)
        }
    }

    @Test func updateProfile() throws {
        let response = app.request("PATCH", "/users/me", token: alice.token, json: #"{"display_name":"Alice A","bio":"hi"}"#)
        #expect(response.status == 200)
        #expect(response.text == #"{"id":\#(alice.id),"username":"alice","display_name":"Alice A","bio":"hi","image_id":null}"#)
        #expect(app.request("GET", "/users/alice").text == response.text)

        let cleared = app.request("PATCH", "/users/me", token: alice.token, json: #"{"bio":null}"#)
        #expect(cleared.text == #"{"id":\#(alice.id),"username":"alice","display_name":"Alice A","bio":null,"image_id":null}"#)
    }

    @Test(arguments: [
        (#"{"username":"eve"}"#, "unknown field username; expected display_name, bio or image_id"),
        (#"{"display_name":5}"#, "display_name must be a string, got number"),
        (#"{"image_id":77}"#, "image_id 77 is not one of your uploads"),
        (#"{"image_id":-1}"#, "image_id must be a positive integer"),
        ("[]", "expected a JSON object, got array"),
        ("", "request body must be a JSON object"),
    ])
    func badProfileUpdatesAre400AndChangeNothing(_ body: String, _ message: String) throws {
        let response = app.request("PATCH", "/users/me", token: alice.token, json: body)
        #expect(response.status == 400)
        #expect(response.error == message)
        #expect(try app.store.user(id: alice.id) == User(id: alice.id, username: "alice", displayName: nil, bio: nil, imageID: nil))
    }
}
