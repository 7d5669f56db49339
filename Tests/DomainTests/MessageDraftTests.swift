import Domain
import Testing

@Suite struct MessageDraftTests {
    private func draft(_ json: String) throws -> MessageDraft {
        try MessageDraft(JSONFields(parsing: Array(json.utf8)))
    }

    private func files(_ count: Int) -> [MessageDraft.FileReference] {
        (0..<count).map { .id(Int64($0 + 1)) }
    }

    @Test func plainContent() throws {
        let message = try MessageDraft(content: "hello")
        #expect(message.content == "hello")
        #expect(message.files.isEmpty)
        #expect(message.nonce == nil)
    }

    @Test(arguments: [nil, "", " ", "\n\t  ", "\u{00A0}\u{2003}"] as [String?])
    func blankContentWithoutFilesIsRefused(_ content: String?) {
        #expect(throws: ValidationError("a message needs non-empty content or files")) {
            try MessageDraft(content: content)
        }
    }

    @Test func blankContentWithFilesIsAllowed() throws {
        #expect(try MessageDraft(content: nil, files: files(1)).files == [.id(1)])
        #expect(try MessageDraft(content: "  ", files: files(1)).content == "  ")
    }

    @Test func contentLengthLimit() throws {
        #expect(MessageDraft.maxContentLength == 4000)
        #expect(try MessageDraft(content: String(repeating: "x", count: 4000)).content?.count == 4000)
        #expect(throws: ValidationError("content must be at most 4000 characters")) {
            try MessageDraft(content: String(repeating: "x", count: 4001))
        }
        #expect(throws: ValidationError("content must be at most 4000 characters")) {
            try MessageDraft(content: String(repeating: "😀", count: 4001))
        }
    }

    @Test func atMostTenFiles() throws {
        #expect(try MessageDraft(content: nil, files: files(10)).files.count == 10)
        #expect(throws: ValidationError("a message may carry at most 10 files")) {
            try MessageDraft(content: "x", files: files(11))
        }
        let eleven = (0..<11).map { _ in #"{"url":"/uploads/a.png"}"# }.joined(separator: ",")
        #expect(throws: ValidationError("a message may carry at most 10 files")) {
            try draft(#"{"content":"x","files":[\#(eleven)]}"#)
        }
    }

    @Test func nonceLength() throws {
        #expect(try MessageDraft(content: "x", nonce: "n").nonce == "n")
        #expect(try MessageDraft(content: "x", nonce: String(repeating: "n", count: 64)).nonce?.count == 64)
        #expect(throws: ValidationError("nonce must be 1 to 64 characters")) {
            try MessageDraft(content: "x", nonce: String(repeating: "n", count: 65))
        }
        #expect(throws: ValidationError("nonce must be 1 to 64 characters")) { try MessageDraft(content: "x", nonce: "") }
        #expect(throws: ValidationError("nonce must be 1 to 64 characters")) { try draft(#"{"content":"x","nonce":""}"#) }
        #expect(throws: ValidationError("nonce must be a string, got number")) { try draft(#"{"content":"x","nonce":5}"#) }
    }

    @Test func nonceIsReadEvenWhenTheRestIsRefused() throws {
        let fields = try JSONFields(parsing: Array(#"{"content":"","nonce":"abc"}"#.utf8))
        #expect(try MessageDraft.nonce(in: fields) == "abc")
        #expect(throws: ValidationError.self) { try MessageDraft(fields) }
    }

    @Test func fromJSON() throws {
        let message = try draft(#"{"content":"hi","files":[{"url":"/uploads/0f1e2d3c-aaaa.png","size_bytes":1},{"id":7}],"nonce":"n1"}"#)
        #expect(message.content == "hi")
        #expect(message.files == [.storedName("0f1e2d3c-aaaa.png"), .id(7)])
        #expect(message.nonce == "n1")
        #expect(try draft(#"{"files":[{"url":"/uploads/a.png"}]}"#).content == nil)
        #expect(try draft(#"{"content":"hi","files":null}"#).files.isEmpty)
        #expect(try draft(#"{"content":"hi","files":[]}"#).files.isEmpty)
    }

    @Test func fromJSONRefusesWrongTypes() {
        #expect(throws: ValidationError("content must be a string, got number")) { try draft(#"{"content":5}"#) }
        #expect(throws: ValidationError("files must be an array, got object")) { try draft(#"{"content":"x","files":{}}"#) }
        #expect(throws: ValidationError("each file must be an object from /upload")) { try draft(#"{"content":"x","files":["/uploads/a.png"]}"#) }
        #expect(throws: ValidationError("each file needs the url (or id) returned by /upload")) {
            try draft(#"{"content":"x","files":[{"filename":"a.png"}]}"#)
        }
        #expect(throws: ValidationError("id must be a positive integer")) { try draft(#"{"content":"x","files":[{"id":0}]}"#) }
        #expect(throws: ValidationError("url must be a string, got number")) { try draft(#"{"content":"x","files":[{"url":1}]}"#) }
        #expect(throws: ValidationError("a message needs non-empty content or files")) { try draft("{}") }
    }

    @Test(arguments: ["../x", "/uploads/../etc/passwd", "http://evil/x", "https://example.com/uploads/a.png",
                      "/uploads/a/b", "/uploads/.hidden", "/uploads/", "/uploads/..", "/uploads/a..b", "/uploads/a.b.c",
                      "/uploads/%2e%2e%2fx", "/UPLOADS/a.png", "uploads/a.png", "//uploads/a.png", "/uploads/a\\b",
                      "/uploads/a b.png", "/uploads/a.png?x=1", "/uploads/" + String(repeating: "a", count: 81)])
    func refusesFileURLsTheServerCouldNotHaveMade(_ url: String) {
        #expect(MessageDraft.storedName(fromURL: url) == nil)
        #expect(throws: ValidationError.self) { try draft(#"{"content":"x","files":[{"url":"\#(url.replacingBackslashes())"}]}"#) }
    }

    @Test(arguments: [("/uploads/0f1e2d3c-aaaa-bbbb-cccc-000000000000.png", "0f1e2d3c-aaaa-bbbb-cccc-000000000000.png"),
                      ("/uploads/abc", "abc"), ("/uploads/ABC-1.bin", "ABC-1.bin")])
    func acceptsUploadURLs(_ url: String, _ name: String) {
        #expect(MessageDraft.storedName(fromURL: url) == name)
    }
}

private extension String {
    /// Escapes backslashes for embedding in a JSON string literal.
    func replacingBackslashes() -> String {
        var result = ""
        for character in self { result += character == "\\" ? "\\\\" : String(character) }
        return result
    }
}

/// Length limits bound what is stored, so they count Unicode scalars: one letter followed by
/// thousands of combining marks is one `Character` but thousands of scalars.
@Suite struct CombiningMarkLengthTests {
    private let zalgo = "a" + String(repeating: "\u{0301}", count: 5000)

    @Test func premise() {
        #expect(zalgo.count == 1)
    }

    @Test func nonce() throws {
        #expect(throws: ValidationError("nonce must be 1 to 64 characters")) { try MessageDraft(content: "x", nonce: zalgo) }
        let fields = try JSONFields(parsing: Array(#"{"content":"x","nonce":"\#(zalgo)"}"#.utf8))
        #expect(throws: ValidationError("nonce must be 1 to 64 characters")) { try MessageDraft.nonce(in: fields) }
    }

    @Test func content() {
        #expect(throws: ValidationError("content must be at most 4000 characters")) { try MessageDraft(content: zalgo) }
    }

    @Test func profileFields() throws {
        #expect(throws: ValidationError("display_name must be at most 64 characters")) {
            try ProfileUpdate(JSONFields(parsing: Array(#"{"display_name":"\#(zalgo)"}"#.utf8)))
        }
        #expect(throws: ValidationError("bio must be at most 500 characters")) {
            try ProfileUpdate(JSONFields(parsing: Array(#"{"bio":"\#(zalgo)"}"#.utf8)))
        }
    }

    @Test func groupName() throws {
        #expect(throws: ValidationError("name must be at most 128 characters")) {
            try GroupDraft(JSONFields(parsing: Array(#"{"name":"\#(zalgo)","participants":[]}"#.utf8)))
        }
    }
}
