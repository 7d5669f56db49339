import Domain
import Testing

@Suite struct RelayNotificationTests {
    @Test func encodesSmallJSON() {
        #expect(String(decoding: RelayNotification.message(chatID: 3, messageID: 42).encoded, as: UTF8.self)
            == #"{"type":"message","chat_id":3,"message_id":42}"#)
        #expect(String(decoding: RelayNotification.chat(chatID: 7).encoded, as: UTF8.self) == #"{"type":"chat","chat_id":7}"#)
    }

    @Test(arguments: [RelayNotification.message(chatID: 1, messageID: .max), .chat(chatID: 99), .user(userID: 5),
                      .events, .typing(chatID: 3, userID: 4), .presence(userID: 8)])
    func roundTrips(_ notification: RelayNotification) {
        #expect(RelayNotification(decoding: notification.encoded) == notification)
    }

    @Test(arguments: ["", "{}", "[]", "garbage", #"{"type":"message","chat_id":1}"#, #"{"type":"other","chat_id":1}"#,
                      #"{"type":"chat","chat_id":0}"#, #"{"type":"chat","chat_id":"1"}"#, #"{"type":"chat"}"#])
    func refusesAnythingElse(_ text: String) {
        #expect(RelayNotification(decoding: Array(text.utf8)) == nil)
    }
}

@Suite struct StoredFileKindTests {
    @Test(arguments: [("image/png", StoredFile.Kind.picture), ("IMAGE/jpeg", .picture), ("video/mp4", .video),
                      ("audio/ogg", .audio), ("text/html", .file), ("application/pdf", .file), ("image", .picture),
                      ("", .file)])
    func kindFromMimeType(_ mime: String, _ kind: StoredFile.Kind) {
        #expect(StoredFile.Kind(mimeType: mime) == kind)
    }

    @Test func noMimeTypeIsAFile() {
        #expect(StoredFile.Kind(mimeType: nil) == .file)
    }

    @Test func url() {
        let file = StoredFile(id: 1, uploaderID: 1, kind: .file, storedName: "abc.bin", filename: "x", mimeType: nil,
                              sizeBytes: 1, createdAt: "2026-02-19T12:00:00Z")
        #expect(file.url == "/uploads/abc.bin")
        #expect(MessageDraft.storedName(fromURL: file.url) == file.storedName)
    }
}
