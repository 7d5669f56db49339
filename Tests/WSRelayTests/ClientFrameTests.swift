import NIOEmbedded
import NIOCore
import NIOWebSocket
import Domain
import Testing
@testable import WSRelay

@Suite struct ClientFrameTests {
    func parse(_ text: String) throws(ClientFrame.Refusal) -> ClientFrame {
        try ClientFrame(parsing: Array(text.utf8))
    }

    @Test func identify() throws {
        #expect(try parse(#"{"op":"IDENTIFY","d":{"token":"abc"}}"#) == .identify(token: "abc", stream: StreamOptions()))
    }

    @Test func identifyAsksForProtocol2AndResume() throws {
        #expect(try parse(#"{"op":"IDENTIFY","d":{"token":"abc","v":2}}"#)
                == .identify(token: "abc", stream: StreamOptions(version: .v2)))
        // `since` implies protocol 2.
        #expect(try parse(#"{"op":"IDENTIFY","d":{"token":"abc","since":41}}"#)
                == .identify(token: "abc", stream: StreamOptions(version: .v2, since: 41)))
        #expect(throws: ClientFrame.Refusal.self) { try parse(#"{"op":"IDENTIFY","d":{"token":"abc","v":3}}"#) }
        #expect(throws: ClientFrame.Refusal.self) { try parse(#"{"op":"IDENTIFY","d":{"token":"abc","since":-1}}"#) }
        #expect(throws: ClientFrame.Refusal.self) { try parse(#"{"op":"IDENTIFY","d":{"token":"abc","since":"7"}}"#) }
    }

    @Test func seed000Send() throws {
        let frame = try parse(#"{"chat_id":7,"content":"hi","files":[],"nonce":"n-1"}"#)
        #expect(frame == .send(chatID: 7, draft: try MessageDraft(content: "hi", nonce: "n-1")))
    }

    @Test func seed000SendWithFiles() throws {
        let frame = try parse(#"{"chat_id":7,"files":[{"url":"/uploads/abc-def.png","size_bytes":999999}]}"#)
        #expect(frame == .send(chatID: 7, draft: try MessageDraft(content: nil, files: [.storedName("abc-def.png")])))
    }

    @Test func seed001Send() throws {
        let frame = try parse(#"{"receiver_username":"bob","content":"yo"}"#)
        #expect(frame == .sendToUser(username: "bob", draft: try MessageDraft(content: "yo")))
    }

    @Test(arguments: [
        ("not json", "malformed JSON"),
        ("[1,2]", "expected a JSON object"),
        (#"{"op":"DANCE"}"#, "unknown op"),
        (#"{"op":"IDENTIFY","d":{}}"#, "IDENTIFY needs d.token"),
        (#"{"chat_id":"7","content":"x"}"#, "chat_id must be an integer"),
        (#"{"chat_id":99999999999999999999,"content":"x"}"#, "within 64 bits"),
        (#"{"chat_id":-1,"content":"x"}"#, "positive"),
        (#"{"chat_id":1,"content":"   "}"#, "non-empty content or files"),
        (#"{"chat_id":1,"files":[{"url":"/uploads/../etc/passwd"}]}"#, "not an upload of this server"),
        (#"{"chat_id":1,"files":[{"url":"http://evil.example/x.png"}]}"#, "not an upload of this server"),
        (#"{"receiver_username":"1bob","content":"x"}"#, "start with a letter"),
        (#"{"receiver_username":"bob"}"#, "content is required"),
        (#"{"hello":1}"#, "expected a message with chat_id or receiver_username"),
    ])
    func refusals(text: String, expected: String) {
        #expect {
            _ = try parse(text)
        } throws: { error in
            (error as? ClientFrame.Refusal)?.message.contains(expected) == true
        }
    }

    @Test func refusalEchoesTheNonce() {
        #expect {
            _ = try parse(#"{"chat_id":1,"content":"","nonce":"abc"}"#)
        } throws: { error in
            (error as? ClientFrame.Refusal)?.nonce == "abc"
        }
    }

    @Test func tooManyFiles() {
        let files = (0..<11).map { _ in #"{"url":"/uploads/a.png"}"# }.joined(separator: ",")
        #expect(throws: ClientFrame.Refusal.self) { _ = try parse(#"{"chat_id":1,"files":[\#(files)]}"#) }
    }
}

@Suite struct ServerFrameTests {
    func text(_ frame: ServerFrame) -> String {
        String(decoding: JSONWriter.encode(frame), as: UTF8.self)
    }

    @Test func shapes() {
        #expect(text(.ready(userID: 3)) == #"{"op":"READY","d":{"user_id":3}}"#)
        #expect(text(.ack(nonce: "n", messageID: 9)) == #"{"op":"ACK","d":{"nonce":"n","id":9}}"#)
        #expect(text(.error(message: "no \"way\"", nonce: nil)) == #"{"op":"ERROR","d":{"message":"no \"way\"","nonce":null}}"#)
        let chat = Chat(id: 1, name: nil, kind: .direct, createdAt: "2026-02-19T12:00:00Z", participants: [1, 2])
        #expect(text(.chat(chat))
            == #"{"op":"CHAT","d":{"id":1,"name":null,"chat_type":"direct","created_at":"2026-02-19T12:00:00Z","participants":[1,2]}}"#)
    }
}

@Suite struct CloseCodeTests {
    @Test func codesAreDistinctAndInTheirRanges() {
        let numbers = CloseCode.allCases.map { code -> UInt16 in
            var buffer = ByteBufferAllocator().buffer(capacity: 2)
            buffer.write(webSocketErrorCode: code.code)
            return buffer.readInteger(as: UInt16.self)!
        }
        #expect(Set(numbers).count == numbers.count)
        #expect(numbers == [1000, 1001, 1002, 1007, 1008, 1009, 1011, 4001, 4008, 4009, 4501, 4502])
        // 4000–4499: reconnect; 4500–4999: reconnecting with the same credentials fails.
        #expect(CloseCode.allCases.filter { [.identifyTimeout, .tooSlow, .pingTimeout].contains($0) }.count == 3)
        for code in CloseCode.allCases { #expect(code.reason.utf8.count <= 123) }
    }
}

@Suite struct TextFrameTests {
    /// The pre-encoded frame is exactly what NIO's encoder makes of the same payload.
    @Test(arguments: [0, 1, 125, 126, 65_535, 65_536])
    func matchesNIOsEncoder(length: Int) throws {
        let payload = [UInt8](repeating: UInt8(ascii: "a"), count: length)
        let ours = TextFrame.encode(payload, allocator: ByteBufferAllocator())
        let channel = EmbeddedChannel(handler: WebSocketFrameEncoder())
        try channel.writeOutbound(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: payload)))
        var theirs = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) { theirs.writeBuffer(&part) }
        #expect(ours == theirs)
    }
}
