import Domain
import Testing

@Suite struct JSONWriterTests {
    private func text(_ value: some JSONEncodable) -> String {
        String(decoding: JSONWriter.encode(value), as: UTF8.self)
    }

    private let file = StoredFile(id: 5, uploaderID: 1, kind: .picture, storedName: "0f1e2d3c-aaaa-bbbb-cccc-000000000000.png",
                                  filename: "cat \"1\".png", mimeType: "image/png", sizeBytes: 1234,
                                  createdAt: "2026-02-19T12:00:00Z")

    @Test func userWithNilFieldsWritesNull() {
        let user = User(id: 1, username: "alice", displayName: nil, bio: nil, imageID: nil)
        #expect(text(user) == #"{"id":1,"username":"alice","display_name":null,"bio":null,"image_id":null}"#)
    }

    @Test func userWithEveryField() {
        let user = User(id: 7, username: "bob", displayName: "Bob B", bio: "hi\nthere", imageID: 3)
        #expect(text(user) == #"{"id":7,"username":"bob","display_name":"Bob B","bio":"hi\nthere","image_id":3}"#)
    }

    @Test func escapesStrings() {
        var writer = JSONWriter()
        writer.string("q\" b\\ n\n r\r t\t nul\u{0} bell\u{7} esc\u{1B} del\u{7F} / é 😀")
        #expect(String(decoding: writer.bytes, as: UTF8.self)
            == #""q\" b\\ n\n r\r t\t nul\u0000 bell\u0007 esc\u001b del\u007f / é 😀""#)
    }

    @Test func numbers() {
        var writer = JSONWriter()
        writer.array([0, -1, 42, .max, .min] as [Int64])
        #expect(String(decoding: writer.bytes, as: UTF8.self) == "[0,-1,42,9223372036854775807,-9223372036854775808]")

        var doubles = JSONWriter()
        doubles.object { json in
            json.key("a"); json.number(1.5)
            json.key("b"); json.number(Double.nan)
            json.key("c"); json.number(-Double.infinity)
            json.key("d"); json.bool(true)
            json.key("e"); json.bool(false)
        }
        #expect(String(decoding: doubles.bytes, as: UTF8.self) == #"{"a":1.5,"b":null,"c":null,"d":true,"e":false}"#)
    }

    @Test func chat() {
        let chat = Chat(id: 3, name: nil, kind: .direct, createdAt: "2026-02-19T12:00:00Z", participants: [1, 2])
        #expect(text(chat) == #"{"id":3,"name":null,"chat_type":"direct","created_at":"2026-02-19T12:00:00Z","participants":[1,2]}"#)
        let group = Chat(id: 4, name: "Team", kind: .group, createdAt: "2026-02-19T12:00:00Z", participants: [])
        #expect(text(group) == #"{"id":4,"name":"Team","chat_type":"group","created_at":"2026-02-19T12:00:00Z","participants":[]}"#)
    }

    @Test func initiatedChat() {
        #expect(text(InitiatedChat(chatID: 9, created: true)) == #"{"chat_id":9,"status":"created"}"#)
        #expect(text(InitiatedChat(chatID: 9, created: false)) == #"{"chat_id":9,"status":"exists"}"#)
    }

    @Test func storedFileAndUploadReceipt() {
        let url = "/uploads/0f1e2d3c-aaaa-bbbb-cccc-000000000000.png"
        #expect(text(file) == #"{"id":5,"type":"picture","url":"\#(url)","filename":"cat \"1\".png","mime_type":"image/png","size_bytes":1234,"created_at":"2026-02-19T12:00:00Z"}"#)
        // Seed 000's receipt, exactly; with ?v=2 the receipt is the file object above.
        #expect(text(file.seedUploadReceipt) == #"{"url":"\#(url)","filename":"cat \"1\".png","mime_type":"image/png","size_bytes":1234}"#)
        let noMime = StoredFile(id: 6, uploaderID: 1, kind: .file, storedName: "x.bin", filename: "x", mimeType: nil,
                                sizeBytes: 0, createdAt: "2026-02-19T12:00:00Z")
        #expect(text(noMime.seedUploadReceipt) == #"{"url":"/uploads/x.bin","filename":"x","mime_type":null,"size_bytes":0}"#)
    }

    @Test func messageAndPage() {
        let message = Message(id: 10, chatID: 3, senderID: 1, content: nil, timestamp: "2026-02-19T12:00:01Z", files: [file])
        let expectedMessage = #"{"id":10,"chat_id":3,"sender_id":1,"content":null,"timestamp":"2026-02-19T12:00:01Z","files":["#
            + text(file) + "]}"
        #expect(text(message) == expectedMessage)
        let plain = Message(id: 11, chatID: 3, senderID: 2, content: "hi", timestamp: "2026-02-19T12:00:02Z", files: [])
        #expect(text(plain) == #"{"id":11,"chat_id":3,"sender_id":2,"content":"hi","timestamp":"2026-02-19T12:00:02Z","files":[]}"#)
        #expect(text(MessagePage(chatID: 3, messages: [message, plain]))
            == #"{"chat_id":3,"messages":["# + expectedMessage + "," + text(plain) + "]}")
        #expect(text(MessagePage(chatID: 3, messages: [])) == #"{"chat_id":3,"messages":[]}"#)
    }

    @Test func protocol2MessageChatAndEventFrames() {
        let reacted = Message(id: 12, chatID: 3, senderID: 2, content: "hi", timestamp: "2026-02-19T12:00:02Z", files: [],
                              replyToID: 11, editedAt: "2026-02-19T12:01:00Z",
                              reactions: [Reaction(emoji: "👍", count: 2, userIDs: [1, 2])])
        let full = #"{"id":12,"chat_id":3,"sender_id":2,"content":"hi","timestamp":"2026-02-19T12:00:02Z","files":[],"#
            + #""reply_to_id":11,"edited_at":"2026-02-19T12:01:00Z","reactions":[{"emoji":"👍","count":2,"user_ids":[1,2]}]}"#
        #expect(text(reacted.full) == full)
        #expect(text(MessagePage(chatID: 3, messages: [reacted], version: .v2)) == #"{"chat_id":3,"messages":["# + full + "]}")
        // The seed shape of the same message drops every protocol-2 field.
        #expect(text(reacted) == #"{"id":12,"chat_id":3,"sender_id":2,"content":"hi","timestamp":"2026-02-19T12:00:02Z","files":[]}"#)

        let chat = Chat(id: 3, name: nil, kind: .direct, createdAt: "2026-02-19T12:00:00Z", participants: [1, 2])
        let view = ChatView(chat: chat, lastMessage: reacted, unreadCount: 4, lastReadID: 9, role: .member)
        #expect(text(view) == #"{"id":3,"name":null,"chat_type":"direct","created_at":"2026-02-19T12:00:00Z","participants":[1,2],"#
            + #""last_message":"# + full + #","unread_count":4,"last_read_id":9,"my_role":"member"}"#)
        let empty = ChatView(chat: chat, lastMessage: nil, unreadCount: 0, lastReadID: 0, role: .owner)
        #expect(text(empty).hasSuffix(#""last_message":null,"unread_count":0,"last_read_id":0,"my_role":"owner"}"#))

        let event = Event(seq: 41, op: .message, audience: .chat(3), body: .message(reacted))
        #expect(event.hasSharedFrame)
        #expect(String(decoding: event.frame { _ in view }, as: UTF8.self) == #"{"op":"MESSAGE","seq":41,"d":"# + full + "}")
        let removed = Event(seq: 42, op: .chatRemoved, audience: .user(1), body: .data(Array(#"{"chat_id":3}"#.utf8)))
        #expect(String(decoding: removed.frame { _ in view }, as: UTF8.self) == #"{"op":"CHAT_REMOVED","seq":42,"d":{"chat_id":3}}"#)
        let changed = Event(seq: 43, op: .chat, audience: .chat(3), body: .chat(chat))
        #expect(!changed.hasSharedFrame)
        #expect(String(decoding: changed.frame { _ in empty }, as: UTF8.self) == #"{"op":"CHAT","seq":43,"d":"# + text(empty) + "}")
    }

    @Test func legacyMessageNamesTheOtherPersonAsReceiver() {
        let mine = Message(id: 1, chatID: 3, senderID: 10, content: "hi", timestamp: "2026-02-19T12:00:00Z", files: [])
        let theirs = Message(id: 2, chatID: 3, senderID: 20, content: nil, timestamp: "2026-02-19T12:00:01Z", files: [file])
        #expect(text(LegacyMessage(mine, userID: 10, peerID: 20))
            == #"{"id":1,"sender_id":10,"receiver_id":20,"content":"hi","timestamp":"2026-02-19T12:00:00Z"}"#)
        #expect(text(LegacyMessage(theirs, userID: 10, peerID: 20))
            == #"{"id":2,"sender_id":20,"receiver_id":10,"content":"","timestamp":"2026-02-19T12:00:01Z"}"#)
        let selfChat = LegacyMessage(mine, userID: 10, peerID: 10)
        #expect(selfChat.receiverID == 10)
    }

    @Test func arrayOfValues() {
        let users = [User(id: 1, username: "a", displayName: nil, bio: nil, imageID: nil),
                     User(id: 2, username: "b", displayName: nil, bio: nil, imageID: nil)]
        #expect(String(decoding: JSONWriter.encode(users), as: UTF8.self)
            == #"[{"id":1,"username":"a","display_name":null,"bio":null,"image_id":null},{"id":2,"username":"b","display_name":null,"bio":null,"image_id":null}]"#)
        #expect(String(decoding: JSONWriter.encode([User]()), as: UTF8.self) == "[]")
    }

    @Test func jsonTreeWritesObjectKeysSorted() {
        let value = JSON.object(["b": .int(1), "a": .array([.null, .bool(true), .string("x")]), "c": .object([:])])
        #expect(text(value) == #"{"a":[null,true,"x"],"b":1,"c":{}}"#)
    }

    @Test func roundTripsThroughTheParser() throws {
        var allControls = ""
        for value in 0..<0x20 { allControls.unicodeScalars.append(Unicode.Scalar(UInt8(value))) }
        let value = JSON.object([
            "controls": .string(allControls + "\u{7F}\"\\"),
            "unicode": .string("é中😀\u{FFFF}\u{10FFFF}"),
            "numbers": .array([.int(.max), .int(.min), .int(0), .double(1.25), .double(-2.5e-10)]),
            "nested": .object(["deeper": .array([.object(["x": .null])]), "flag": .bool(false)]),
            "empty": .string(""),
        ])
        let bytes = JSONWriter.encode(value)
        #expect(try JSONParser.parse(bytes) == value)
        // Writing the parsed tree again gives the same bytes.
        #expect(JSONWriter.encode(try JSONParser.parse(bytes)) == bytes)
    }

    @Test func roundTripsModelsThroughTheParser() throws {
        let user = User(id: 1, username: "alice", displayName: "A\u{1}\"", bio: nil, imageID: 2)
        let parsed = try JSONFields(parsing: JSONWriter.encode(user))
        #expect(try parsed.int("id") == 1)
        #expect(try parsed.string("display_name") == "A\u{1}\"")
        #expect(parsed.members["bio"] == .null)
        #expect(Set(parsed.members.keys) == ["id", "username", "display_name", "bio", "image_id"])
    }
}
