import Domain
import Storage
import Testing

@Suite struct StoreMessagesTests {
    private let database: TestDatabase
    private let store: Store
    private let alice: User, bob: User, carol: User
    private let chatID: Int64

    init() throws {
        database = try TestDatabase()
        store = try database.migratedStore()
        let users = try store.users("alice", "bob", "carol")
        (alice, bob, carol) = (users[0], users[1], users[2])
        chatID = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
    }

    @Test func postStoresAndReturnsTheMessage() throws {
        let posted = try store.send("hello", from: alice.id, to: chatID)
        #expect(posted.isNew)
        #expect(posted.message.chatID == chatID)
        #expect(posted.message.senderID == alice.id)
        #expect(posted.message.content == "hello")
        #expect(posted.message.files.isEmpty)
        #expect(isRFC3339UTC(posted.message.timestamp))
        #expect(try store.message(id: posted.message.id) == posted.message)
        #expect(try store.latestSeq() == posted.seq)
    }

    @Test func nonMembersAreForbiddenAndUnknownChatsNotFound() throws {
        #expect(throws: MessengerError.forbidden("you are not a member of chat \(chatID)")) {
            try store.send("intruder", from: carol.id, to: chatID)
        }
        #expect(throws: MessengerError.notFound("chat 4242 not found")) { try store.send("void", from: alice.id, to: 4242) }
        #expect(try store.count("messages") == 0)
    }

    @Test func theSameSenderAndNonceIsStoredOnce() throws {
        let first = try store.send("once", from: alice.id, to: chatID, nonce: "n-1")
        let second = try store.send("once", from: alice.id, to: chatID, nonce: "n-1")
        #expect(first.isNew)
        #expect(!second.isNew)
        #expect(second.message == first.message)
        #expect(try store.count("messages") == 1)

        // The nonce is per sender: another sender may use the same one.
        let other = try store.send("mine", from: bob.id, to: chatID, nonce: "n-1")
        #expect(other.isNew)
        #expect(other.message.id != first.message.id)
        // Without a nonce every send is new.
        #expect(try store.send("again", from: alice.id, to: chatID).isNew)
        #expect(try store.send("again", from: alice.id, to: chatID).isNew)
        #expect(try store.count("messages") == 4)
    }

    @Test func membershipIsCheckedBeforeANonceIsRecognised() throws {
        let first = try store.send("once", from: alice.id, to: chatID, nonce: "n-1")
        // The same nonce towards a chat Alice is not in is refused, not answered with her
        // earlier message.
        let others = try store.initiateDirectChat(userID: bob.id, peerID: carol.id).chatID
        #expect(throws: MessengerError.forbidden("you are not a member of chat \(others)")) {
            try store.send("once", from: alice.id, to: others, nonce: "n-1")
        }
        #expect(try store.send("once", from: alice.id, to: chatID, nonce: "n-1").message == first.message)
        #expect(try store.count("messages") == 1)
    }

    @Test func aStoredMessageKeepsTheTimestampItWasAnsweredWith() throws {
        let posted = try store.send("now", from: alice.id, to: chatID)
        #expect(isRFC3339UTC(posted.message.timestamp))
        #expect(try store.message(id: posted.message.id)?.timestamp == posted.message.timestamp)
        let databaseNow = try store.database.statement(SQL(sqlite: "SELECT strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
                                                           postgres: "SELECT messenger_time_now()")).first { $0.string(0) }
        // Both clocks are the system's; they agree to within the second that may tick between.
        #expect(posted.message.timestamp <= databaseNow!)
    }

    @Test func attachmentsResolveToTheSendersOwnUploads() throws {
        let picture = try store.upload(by: alice.id, name: "aaaa.png", size: 111)
        let document = try store.upload(by: alice.id, name: "bbbb.bin", kind: .file, size: 222)
        let posted = try store.send(nil, from: alice.id, to: chatID, files: [.storedName("bbbb.bin"), .id(picture.id)])
        #expect(posted.message.content == nil)
        #expect(posted.message.files == [document, picture])
        #expect(try store.message(id: posted.message.id)?.files == [document, picture])
        #expect(try store.count("message_files") == 2)
    }

    @Test func someoneElsesOrAnUnknownUploadIsRefusedAndNothingStored() throws {
        let theirs = try store.upload(by: carol.id, name: "cccc.png")
        let mine = try store.upload(by: alice.id, name: "aaaa.png")
        #expect(throws: MessengerError.invalid("file /uploads/cccc.png is not one of your uploads")) {
            try store.send("look", from: alice.id, to: chatID, files: [.storedName(mine.storedName), .storedName("cccc.png")])
        }
        #expect(throws: MessengerError.invalid("file \(theirs.id) is not one of your uploads")) {
            try store.send("look", from: alice.id, to: chatID, files: [.id(theirs.id)])
        }
        #expect(throws: MessengerError.invalid("file /uploads/made-up.png is not one of your uploads")) {
            try store.send("look", from: alice.id, to: chatID, files: [.storedName("made-up.png")])
        }
        #expect(throws: MessengerError.self) { try store.send("look", from: alice.id, to: chatID, files: [.id(99999)]) }
        #expect(try store.count("messages") == 0)
        #expect(try store.count("message_files") == 0)
    }

    @Test func batchPostStoresEachAcceptedItemAndReportsEachRefusal() throws {
        let theirs = try store.upload(by: carol.id, name: "cccc.png")
        let draft = { (text: String) in try MessageDraft(content: text) }
        let batch = [
            OutgoingMessage(senderID: alice.id, chatID: chatID, draft: try draft("one")),
            OutgoingMessage(senderID: carol.id, chatID: chatID, draft: try draft("not a member")),
            OutgoingMessage(senderID: bob.id, chatID: chatID, draft: try draft("two")),
            OutgoingMessage(senderID: alice.id, chatID: chatID,
                            draft: try MessageDraft(content: "stolen", files: [.id(theirs.id)])),
            OutgoingMessage(senderID: alice.id, chatID: 999, draft: try draft("nowhere")),
            OutgoingMessage(senderID: alice.id, chatID: chatID, draft: try draft("three")),
        ]
        let results = store.post(batch)
        #expect(results.count == batch.count)

        func refusal(_ index: Int) -> MessengerError.Kind? {
            if case .failure(let error as MessengerError) = results[index] { return error.kind }
            return nil
        }
        #expect(refusal(1) == .forbidden)
        #expect(refusal(3) == .invalid)
        #expect(refusal(4) == .notFound)
        let stored = [0, 2, 5].compactMap { try? results[$0].get().message }
        #expect(stored.map(\.content) == ["one", "two", "three"])
        #expect(stored.map(\.id) == stored.map(\.id).sorted())

        let history = try store.messages(chatID: chatID, query: MessageQuery())
        #expect(history == stored)
        #expect(try store.count("messages") == 3)
        #expect(try store.count("message_files") == 0)
    }

    @Test func batchPostHonoursNoncesWithinTheBatch() throws {
        let message = try MessageDraft(content: "dup", nonce: "same")
        let results = store.post([OutgoingMessage(senderID: alice.id, chatID: chatID, draft: message),
                                  OutgoingMessage(senderID: alice.id, chatID: chatID, draft: message)])
        let first = try results[0].get(), second = try results[1].get()
        #expect(first.isNew)
        #expect(!second.isNew)
        #expect(first.message.id == second.message.id)
        #expect(try store.count("messages") == 1)
    }

    @Test func paging() throws {
        var ids: [Int64] = []
        for index in 1...10 {
            ids.append(try store.send("m\(index)", from: index % 2 == 0 ? bob.id : alice.id, to: chatID).message.id)
            // Another chat's messages interleave and must never show up.
            _ = try store.send("noise", from: alice.id, to: store.initiateDirectChat(userID: alice.id, peerID: carol.id).chatID)
        }
        func page(_ query: MessageQuery) throws -> [Int64] {
            try store.messages(chatID: chatID, query: query).map(\.id)
        }
        #expect(try page(MessageQuery()) == ids)
        #expect(try page(MessageQuery(limit: 3)) == Array(ids[7...9]))
        #expect(try page(MessageQuery(limit: 3, beforeID: ids[7])) == Array(ids[4...6]))
        #expect(try page(MessageQuery(limit: 3, afterID: ids[2])) == Array(ids[3...5]))
        #expect(try page(MessageQuery(limit: 100, beforeID: ids[5], afterID: ids[2])) == Array(ids[3...4]))
        #expect(try page(MessageQuery(limit: 2, beforeID: ids[9], afterID: ids[2])) == Array(ids[3...4]))
        #expect(try page(MessageQuery(limit: 5, afterID: ids[9])) == [])
        #expect(try page(MessageQuery(limit: 5, beforeID: ids[0])) == [])
        #expect(try page(MessageQuery(limit: 1000)) == ids)
        #expect(try store.messages(chatID: chatID, query: MessageQuery()).map(\.content)
            == (1...10).map { "m\($0)" })
    }

    @Test func defaultPageIsTheNewestHundred() throws {
        #expect(MessageQuery().limit == 100)
        for index in 1...105 { _ = try store.send("m\(index)", from: alice.id, to: chatID) }
        let page = try store.messages(chatID: chatID, query: MessageQuery())
        #expect(page.count == 100)
        #expect(page.first?.content == "m6")
        #expect(page.last?.content == "m105")
    }

    @Test func historyCarriesFilesInOrder() throws {
        let one = try store.upload(by: alice.id, name: "one.png")
        let two = try store.upload(by: alice.id, name: "two.png")
        let three = try store.upload(by: alice.id, name: "three.png")
        _ = try store.send("a", from: alice.id, to: chatID, files: [.id(three.id), .id(one.id)])
        _ = try store.send("b", from: bob.id, to: chatID)
        _ = try store.send(nil, from: alice.id, to: chatID, files: [.id(two.id), .id(one.id), .id(three.id)])
        let history = try store.messages(chatID: chatID, query: MessageQuery())
        #expect(history.map(\.files) == [[three, one], [], [two, one, three]])
        #expect(history.map(\.content) == ["a", "b", nil])
    }
}

@Suite struct StoredTextTests {
    private let database: TestDatabase
    private let store: Store

    init() throws {
        database = try TestDatabase()
        store = try database.migratedStore()
    }

    /// On SQLite any text, NUL included. PostgreSQL's text cannot hold NUL: there such text is
    /// refused whole, never cut at the NUL (libpq takes C strings), and nothing is stored (the
    /// API refuses NUL in every text field before it gets here).
    @Test func textWithNULAndAnyUnicodeIsStoredExactly() throws {
        let alice = try store.login(username: "alice")
        let chatID = try store.initiateDirectChat(userID: alice.id, peerID: alice.id).chatID
        for content in ["a\u{0}b", "\u{0}", "tail\u{0}", "é中😀\u{10FFFF}", "line\nbreak\r\n\t", String(repeating: "x", count: 4000)] {
            if TestDatabase.onPostgres && content.utf8.contains(0) {
                let before = try store.count("messages")
                let error = try #require(throws: StorageError.self) { try store.send(content, from: alice.id, to: chatID) }
                #expect(error.sqlState == "22021")
                #expect(try store.count("messages") == before)
                continue
            }
            let posted = try store.send(content, from: alice.id, to: chatID)
            #expect(try store.message(id: posted.message.id)?.content == content, "\(Array(content.utf8))")
        }
        var update = ProfileUpdate()
        update.displayName = .set("A\u{0}B")
        update.bio = .set("\u{0}bio")
        if TestDatabase.onPostgres {
            #expect(throws: StorageError.self) { try store.updateProfile(userID: alice.id, update) }
            #expect(try store.user(id: alice.id)?.displayName == nil)
            return
        }
        _ = try store.updateProfile(userID: alice.id, update)
        #expect(try store.user(id: alice.id)?.displayName == "A\u{0}B")
        #expect(try store.user(id: alice.id)?.bio == "\u{0}bio")
    }

    @Test func aNonceWithNULIsNotConfusedWithItsPrefix() throws {
        let alice = try store.login(username: "alice")
        let chatID = try store.initiateDirectChat(userID: alice.id, peerID: alice.id).chatID
        let first = try store.send("one", from: alice.id, to: chatID, nonce: "n")
        if TestDatabase.onPostgres {  // refused whole rather than taken for "n"
            #expect(throws: StorageError.self) { try store.send("two", from: alice.id, to: chatID, nonce: "n\u{0}x") }
            #expect(try store.count("messages") == 1)
            return
        }
        let second = try store.send("two", from: alice.id, to: chatID, nonce: "n\u{0}x")
        #expect(second.isNew)
        #expect(second.message.id != first.message.id)
    }
}
