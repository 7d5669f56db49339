import Domain
@testable import Storage
import Testing

/// `Store.search`: membership now, both passes, paging, the index kept by sends (one
/// segment per commit) and by the edit and delete triggers.
@Suite struct StoreSearchTests {
    private let database: TestDatabase
    private let store: Store
    private let alice: User, bob: User, carol: User

    init() throws {
        database = try TestDatabase()
        store = try database.migratedStore()
        let users = try store.users("alice", "bob", "carol")
        (alice, bob, carol) = (users[0], users[1], users[2])
    }

    private func ids(_ q: String, _ userID: Int64, chatID: Int64? = nil, beforeID: Int64? = nil, limit: Int = 20)
        throws -> [Int64] {
        try store.search(SearchQuery(parsing: q), userID: userID, chatID: chatID, beforeID: beforeID, limit: limit)
            .messages.map(\.id)
    }

    @Test func theSecondPassFindsMessagesBehindManyMatchesElsewhere() throws {
        let mine = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
        let others = try store.initiateDirectChat(userID: bob.id, peerID: carol.id).chatID
        let old = try store.send("needle common", from: alice.id, to: mine).message.id
        // More matches in a chat Alice is not in than the first pass reads.
        let batch = (0..<(Store.searchScanRows + 100)).map { _ in
            OutgoingMessage(senderID: bob.id, chatID: others, draft: try! MessageDraft(content: "common haystack"))
        }
        for result in store.post(batch) { _ = try result.get() }
        let recent = try store.send("common too", from: bob.id, to: mine).message.id
        #expect(try ids("common", alice.id) == [recent, old])
        #expect(try ids("common", alice.id, limit: 1) == [recent])
        let page = try store.search(SearchQuery(parsing: "common"), userID: alice.id, limit: 1)
        #expect(page.nextBeforeID == recent)
        #expect(try ids("common", alice.id, beforeID: recent) == [old])
        #expect(try ids("common", alice.id, chatID: mine) == [recent, old])
        #expect(try ids("common", carol.id, limit: 3).count == 3)
    }

    @Test func onlyChatsYouAreAMemberOfNow() throws {
        let group = try store.createGroup(creatorID: alice.id, name: "G", participants: [bob.id]).id
        let message = try store.send("secret plan", from: alice.id, to: group).message.id
        #expect(try ids("secret", bob.id) == [message])
        #expect(try ids("secret", carol.id).isEmpty)
        #expect(throws: MessengerError.forbidden("you are not a member of chat \(group)")) {
            try store.search(SearchQuery(parsing: "secret"), userID: carol.id, chatID: group)
        }
        try store.removeMember(chatID: group, userID: bob.id, by: bob.id)
        #expect(try ids("secret", bob.id).isEmpty)
    }

    @Test func editsReindexAndDeletionsLeaveTheIndex() throws {
        let chat = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
        let message = try store.send("shared before", from: alice.id, to: chat).message.id
        _ = try store.editMessage(chatID: chat, messageID: message, by: alice.id, content: "shared after")
        #expect(try ids("before", bob.id).isEmpty)
        #expect(try ids("after", bob.id) == [message])
        #expect(try ids("shared", bob.id) == [message])
        try store.deleteMessage(chatID: chat, messageID: message, by: alice.id)
        #expect(try ids("shared", bob.id).isEmpty)
    }

    @Test func aGroupCommitIndexesItsNewMessagesOnceAndWritesOneSegment() throws {
        let chat = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
        let strangers = try store.initiateDirectChat(userID: bob.id, peerID: carol.id).chatID
        let repeated = try store.send("needle early", from: alice.id, to: chat, nonce: "n-0").message.id
        let writesBefore = TestDatabase.onPostgres ? 0 : try ftsWriteCounter()
        var batch = (1...50).map { index in
            OutgoingMessage(senderID: alice.id, chatID: chat, draft: try! MessageDraft(content: "needle \(index)", nonce: "n-\(index)"))
        }
        batch.append(OutgoingMessage(senderID: alice.id, chatID: chat, draft: try! MessageDraft(content: "needle again", nonce: "n-0")))
        batch.append(OutgoingMessage(senderID: alice.id, chatID: strangers, draft: try! MessageDraft(content: "needle refused")))
        let results = store.post(batch)
        let stored = try results.prefix(50).map { try $0.get().message.id }
        #expect(try results[50].get().message.id == repeated)
        #expect(throws: MessengerError.self) { try results[51].get() }
        // Every new message found once, the repeat not twice, the refused one not at all.
        #expect(try ids("needle", bob.id, limit: 100) == (stored + [repeated]).sorted(by: >))
        #expect(try ids("refused", carol.id).isEmpty)
        // FTS5 counts the segments it writes: one for the commit, not one per message.
        if !TestDatabase.onPostgres { #expect(try ftsWriteCounter() == writesBefore + 1) }
    }

    /// The write counter of `messages_fts`'s structure record (rowid 10 of its data table): a
    /// 4-byte cookie, then varints for the levels, the segments and the segments ever written.
    private func ftsWriteCounter() throws -> Int64 {
        let hex = try #require(try store.database.statement("SELECT hex(block) FROM messages_fts_data WHERE id = 10")
            .first { $0.string(0) })
        let bytes = stride(from: 0, to: hex.utf8.count, by: 2).map { offset in
            UInt8(hex.dropFirst(offset).prefix(2), radix: 16)!
        }
        var values: [Int64] = []
        var value: Int64 = 0
        for byte in bytes.dropFirst(4) where values.count < 3 {
            value = value << 7 | Int64(byte & 0x7f)
            if byte & 0x80 == 0 { values.append(value); value = 0 }
        }
        return try #require(values.count == 3 ? values[2] : nil)
    }

    @Test func theMatchExpressionQuotesEveryTerm() throws {
        let query = try SearchQuery(parsing: "a:b NEAR(c) \"d ef\"*")
        #expect(Store.matchExpression(query, chats: [3, 4])
                == "chat : (c3 OR c4) AND body : \"a:b\" AND body : \"NEAR(c)\" AND body : \"d ef\" *")
        #expect(Store.matchExpression(query, chats: nil) == "body : \"a:b\" AND body : \"NEAR(c)\" AND body : \"d ef\" *")
    }
}
