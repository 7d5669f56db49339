import Domain
import Storage
import Testing

/// Edits, deletions, replies and reactions: the rules, and one event per change.
@Suite struct StoreMessageChangesTests {
    private let database: TestDatabase
    private let store: Store
    private let alice: User, bob: User, carol: User
    private let direct: Int64
    private let group: Int64

    init() throws {
        database = try TestDatabase()
        store = try database.migratedStore()
        let users = try store.users("alice", "bob", "carol")
        (alice, bob, carol) = (users[0], users[1], users[2])
        direct = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
        group = try store.createGroup(creatorID: carol.id, name: "G", participants: [alice.id, bob.id]).id
    }

    private func ops(after seq: Int64) throws -> [EventOp] {
        try store.events(after: seq, limit: 100).events.map(\.op)
    }

    @Test func theSenderEditsAndTheEditIsAnEvent() throws {
        let posted = try store.send("first", from: alice.id, to: direct)
        let edited = try store.editMessage(chatID: direct, messageID: posted.message.id, by: alice.id, content: "second")
        #expect(edited.content == "second")
        #expect(edited.editedAt != nil)
        #expect(try store.messages(chatID: direct, query: MessageQuery()).map(\.content) == ["second"])
        #expect(try ops(after: posted.seq!) == [.messageEdited])

        #expect(throws: MessengerError.forbidden("only its sender may edit message \(posted.message.id)")) {
            try store.editMessage(chatID: direct, messageID: posted.message.id, by: bob.id, content: "mine now")
        }
        #expect(throws: MessengerError.self) {
            try store.editMessage(chatID: direct, messageID: posted.message.id, by: alice.id, content: "  ")
        }
        #expect(throws: MessengerError.forbidden("you are not a member of chat \(direct)")) {
            try store.editMessage(chatID: direct, messageID: posted.message.id, by: carol.id, content: "x")
        }
        #expect(throws: MessengerError.notFound("message \(posted.message.id) not found in chat \(group)")) {
            try store.editMessage(chatID: group, messageID: posted.message.id, by: alice.id, content: "x")
        }
    }

    @Test func deletionByTheSenderOrAGroupAdminOnlyAndOnce() throws {
        let mine = try store.send("bob's", from: bob.id, to: group).message
        #expect(throws: MessengerError.self) { try store.deleteMessage(chatID: group, messageID: mine.id, by: alice.id) }
        try store.deleteMessage(chatID: group, messageID: mine.id, by: carol.id)  // the owner
        #expect(try store.messages(chatID: group, query: MessageQuery()).isEmpty)
        #expect(throws: MessengerError.notFound("message \(mine.id) not found in chat \(group)")) {
            try store.deleteMessage(chatID: group, messageID: mine.id, by: bob.id)
        }
        // In a direct chat only the sender may.
        let dm = try store.send("dm", from: alice.id, to: direct).message
        #expect(throws: MessengerError.self) { try store.deleteMessage(chatID: direct, messageID: dm.id, by: bob.id) }
        try store.deleteMessage(chatID: direct, messageID: dm.id, by: alice.id)
        let deleted = try store.events(after: 0, limit: 100).events.filter { $0.op == .messageDeleted }
        #expect(deleted.count == 2)
        #expect(deleted.last?.body == .data(Array(#"{"chat_id":\#(direct),"message_id":\#(dm.id)}"#.utf8)))
        // Its MESSAGE event is no longer rendered: a replay never shows deleted content.
        #expect(try store.events(after: 0, limit: 100).events.filter { $0.op == .message }.isEmpty)
    }

    @Test func repliesNameALiveMessageOfTheSameChat() throws {
        let original = try store.send("q", from: alice.id, to: direct).message
        let other = try store.send("elsewhere", from: carol.id, to: group).message
        let reply = try store.post(OutgoingMessage(senderID: bob.id, chatID: direct,
                                                   draft: MessageDraft(content: "a", replyToID: original.id))).message
        #expect(reply.replyToID == original.id)
        #expect(try store.message(id: reply.id)?.replyToID == original.id)
        #expect(throws: MessengerError.invalid("reply_to_id \(other.id) is not a message of chat \(direct)")) {
            try store.post(OutgoingMessage(senderID: bob.id, chatID: direct,
                                           draft: MessageDraft(content: "a", replyToID: other.id)))
        }
        try store.deleteMessage(chatID: direct, messageID: original.id, by: alice.id)
        #expect(try store.message(id: reply.id)?.replyToID == original.id)
    }

    @Test func reactionsAreIdempotentCountedAndBounded() throws {
        let message = try store.send("react", from: alice.id, to: group).message
        #expect(try store.setReaction(chatID: group, messageID: message.id, by: bob.id, emoji: "👍", present: true))
        #expect(!(try store.setReaction(chatID: group, messageID: message.id, by: bob.id, emoji: "👍", present: true)))
        #expect(try store.setReaction(chatID: group, messageID: message.id, by: carol.id, emoji: "👍", present: true))
        #expect(try store.setReaction(chatID: group, messageID: message.id, by: alice.id, emoji: "🎉", present: true))
        let reactions = try #require(try store.message(id: message.id)).reactions
        #expect(reactions == [Reaction(emoji: "👍", count: 2, userIDs: [bob.id, carol.id]),
                              Reaction(emoji: "🎉", count: 1, userIDs: [alice.id])])
        #expect(try store.setReaction(chatID: group, messageID: message.id, by: bob.id, emoji: "👍", present: false))
        #expect(!(try store.setReaction(chatID: group, messageID: message.id, by: bob.id, emoji: "👍", present: false)))
        #expect(try store.message(id: message.id)?.reactions.first == Reaction(emoji: "👍", count: 1, userIDs: [carol.id]))
        #expect(try store.events(after: 0, limit: 100).events.filter { $0.op == .reaction }.count == 4)

        let emoji = ["😀", "😁", "😂", "🤣", "😃", "😄", "😅", "😆", "😉", "😊", "😋", "😎", "😍", "😘", "🥰", "😗", "😙", "😚"]
        for face in emoji { try store.setReaction(chatID: group, messageID: message.id, by: bob.id, emoji: face, present: true) }
        #expect(throws: MessengerError.invalid("a message may carry at most 20 different emoji")) {
            try store.setReaction(chatID: group, messageID: message.id, by: bob.id, emoji: "🙂", present: true)
        }
        // An emoji already there is still fine.
        #expect(try store.setReaction(chatID: group, messageID: message.id, by: bob.id, emoji: "🎉", present: true))
    }
}

@Suite struct EmojiTests {
    @Test func oneEmojiOfAFewScalars() throws {
        for good in ["👍", "🇫🇷", "👍🏽", "👩‍👩‍👧‍👦", "❤️", "+"] { #expect(try Emoji.validate(good) == good) }
        for bad in ["", "a", "1", "ok", " ", "👍 ", "\u{7}", "👩‍👩‍👧‍👦👩‍👩‍👧‍👦"] {
            #expect(throws: ValidationError.self) { try Emoji.validate(bad) }
        }
    }
}
