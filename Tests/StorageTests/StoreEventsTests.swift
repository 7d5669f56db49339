import Domain
import Storage
import Testing

/// The event stream: one event per visible change, in the change's transaction; who may see
/// it; pruning.
@Suite struct StoreEventsTests {
    private let database: TestDatabase
    private let store: Store
    private let alice: User, bob: User, carol: User

    init() throws {
        database = try TestDatabase()
        store = try database.migratedStore()
        let users = try store.users("alice", "bob", "carol")
        (alice, bob, carol) = (users[0], users[1], users[2])
    }

    private func all() throws -> [Event] {
        try store.events(after: 0, limit: 1000).events
    }

    private func visible(to user: User, after: Int64 = 0) throws -> [Event] {
        try store.events(visibleTo: user.id, after: after, through: try store.latestSeq())
    }

    @Test func everyVisibleChangeAppendsOneEventInSeqOrder() throws {
        #expect(try store.latestSeq() == 0)
        let direct = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
        _ = try store.initiateDirectChat(userID: bob.id, peerID: alice.id)  // exists: no event
        let posted = try store.send("hi", from: alice.id, to: direct)
        let group = try store.createGroup(creatorID: carol.id, name: "G", participants: [alice.id])
        _ = try store.updateProfile(userID: bob.id, try ProfileUpdate(JSONFields(parsing: Array(#"{"bio":"hey"}"#.utf8))))
        let retry = try store.send("hi", from: alice.id, to: direct, nonce: nil)

        let events = try all()
        #expect(events.map(\.op) == [.chat, .message, .chat, .user, .message])
        #expect(events.map(\.seq) == [1, 2, 3, 4, 5])
        #expect(events[0].audience == .chat(direct))
        #expect(events[1].body == .message(posted.message))
        #expect(posted.seq == 2)
        #expect(events[2].audience == .chat(group.id))
        #expect(events[3].audience == .contacts(bob.id))
        guard case .user(let user) = events[3].body else { Issue.record("USER carries the user"); return }
        #expect(user.bio == "hey")
        #expect(retry.seq == 5)
        #expect(try store.latestSeq() == 5)
    }

    @Test func aRepeatedNonceAppendsNothing() throws {
        let direct = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
        let first = try store.send("once", from: alice.id, to: direct, nonce: "n1")
        let again = try store.send("once", from: alice.id, to: direct, nonce: "n1")
        #expect(!again.isNew)
        #expect(again.seq == nil)
        #expect(try all().filter { $0.op == .message }.map(\.seq) == [first.seq])
    }

    @Test func membersSeeTheirChatsFromWhenTheyJoined() throws {
        let direct = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
        let m1 = try store.send("a→b", from: alice.id, to: direct)
        let group = try store.createGroup(creatorID: carol.id, name: "G", participants: [bob.id])
        let m2 = try store.send("in G", from: carol.id, to: group.id)

        #expect(try visible(to: alice).map(\.seq) == [1, m1.seq!])
        #expect(try visible(to: bob).map(\.seq) == [1, m1.seq!, 3, m2.seq!])
        #expect(try visible(to: carol).map(\.seq) == [3, m2.seq!])
        #expect(try visible(to: bob, after: m1.seq!).map(\.seq) == [3, m2.seq!])
        #expect(try store.memberships(chatID: group.id).allSatisfy { $0.joinedSeq == 3 })
    }

    @Test func profileChangesReachEveryoneWhoSharesAChat() throws {
        _ = try store.initiateDirectChat(userID: alice.id, peerID: bob.id)
        let change = try ProfileUpdate(JSONFields(parsing: Array(#"{"display_name":"Al"}"#.utf8)))
        _ = try store.updateProfile(userID: alice.id, change)
        #expect(try visible(to: alice).map(\.op) == [.chat, .user])
        #expect(try visible(to: bob).map(\.op) == [.chat, .user])
        #expect(try visible(to: carol).isEmpty)
        #expect(Set(try store.contacts(of: alice.id)) == [alice.id, bob.id])
    }

    @Test func pagesOfTheWholeStreamSayWhereTheNextStarts() throws {
        let direct = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
        for index in 0..<5 { _ = try store.send("m\(index)", from: alice.id, to: direct) }
        let first = try store.events(after: 0, limit: 4)
        #expect(first.events.map(\.seq) == [1, 2, 3, 4])
        #expect(first.through == 4 && !first.isLast)
        let second = try store.events(after: first.through, limit: 4)
        #expect(second.events.map(\.seq) == [5, 6])
        #expect(second.through == 6 && second.isLast)
    }

    @Test func pruningDeletesOldEventsOnlyAndRecordsHowFar() throws {
        let direct = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
        for index in 0..<4 { _ = try store.send("m\(index)", from: alice.id, to: direct) }
        try store.database.execute("UPDATE events SET created_at = '2000-01-01T00:00:00Z' WHERE seq <= 3")
        #expect(try store.pruneEvents(olderThan: 86_400, limit: 2) == 2)
        #expect(try store.prunedThrough() == 2)
        #expect(try store.pruneEvents(olderThan: 86_400, limit: 100) == 1)
        #expect(try store.prunedThrough() == 3)
        #expect(try store.pruneEvents(olderThan: 86_400, limit: 100) == 0)
        #expect(try all().map(\.seq) == [4, 5])
        // Messages stay; the head does not move back.
        #expect(try store.messages(chatID: direct, query: MessageQuery()).count == 4)
        #expect(try store.latestSeq() == 5)
    }

    @Test func pruningReadsOnlyTheOldestBatch() throws {
        let direct = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
        for index in 0..<4 { _ = try store.send("m\(index)", from: alice.id, to: direct) }
        // An old event behind recent ones (a clock stepped back) is beyond the batch read.
        try store.database.execute("UPDATE events SET created_at = '2000-01-01T00:00:00Z' WHERE seq = 5")
        #expect(try store.pruneEvents(olderThan: 86_400, limit: 2) == 0)
        #expect(try all().map(\.seq) == [1, 2, 3, 4, 5])
        #expect(try store.pruneEvents(olderThan: 86_400, limit: 5) == 5)
    }

    @Test func theHeadSurvivesPruningEverything() throws {
        let direct = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
        _ = try store.send("m", from: alice.id, to: direct)
        try store.database.execute("UPDATE events SET created_at = '2000-01-01T00:00:00Z'")
        #expect(try store.pruneEvents(olderThan: 86_400, limit: 100) == 2)
        #expect(try store.latestSeq() == 2)
        #expect(try store.send("next", from: alice.id, to: direct).seq == 3)
    }
}
