import Domain
import Storage
import Testing

@Suite struct StoreChatsTests {
    private let database: TestDatabase
    private let store: Store
    private let alice: User, bob: User, carol: User

    init() throws {
        database = try TestDatabase()
        store = try database.migratedStore()
        let users = try store.users("alice", "bob", "carol")
        (alice, bob, carol) = (users[0], users[1], users[2])
    }

    @Test func directChatIsCreatedOnceAndSharedByBothSides() throws {
        let created = try store.initiateDirectChat(userID: alice.id, peerID: bob.id)
        #expect(created.created)
        #expect(try store.initiateDirectChat(userID: alice.id, peerID: bob.id) == InitiatedChat(chatID: created.chatID, created: false))
        #expect(try store.initiateDirectChat(userID: bob.id, peerID: alice.id) == InitiatedChat(chatID: created.chatID, created: false))
        #expect(try store.directChatID(between: bob.id, and: alice.id) == created.chatID)
        #expect(try store.count("chats") == 1)

        let chat = try #require(try store.chat(id: created.chatID))
        #expect(chat.kind == .direct)
        #expect(chat.name == nil)
        #expect(chat.participants == [alice.id, bob.id])
        #expect(isRFC3339UTC(chat.createdAt))
    }

    @Test func differentPairsGetDifferentChats() throws {
        let ab = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
        let ac = try store.initiateDirectChat(userID: alice.id, peerID: carol.id).chatID
        let bc = try store.initiateDirectChat(userID: carol.id, peerID: bob.id).chatID
        #expect(Set([ab, ac, bc]).count == 3)
        #expect(try store.directChatID(between: alice.id, and: carol.id) == ac)
        #expect(try store.directChatID(between: bob.id, and: carol.id) == bc)
    }

    @Test func chatWithYourselfHasOneMember() throws {
        let created = try store.initiateDirectChat(userID: alice.id, peerID: alice.id)
        #expect(created.created)
        #expect(try store.initiateDirectChat(userID: alice.id, peerID: alice.id) == InitiatedChat(chatID: created.chatID, created: false))
        #expect(try store.chat(id: created.chatID)?.participants == [alice.id])
        #expect(try store.members(chatID: created.chatID) == [alice.id])
        #expect(try store.count("chats") == 1)
    }

    @Test func directChatWithAnUnknownUserIsRefusedAndWritesNothing() throws {
        #expect(throws: MessengerError.notFound("user 999 not found")) {
            try store.initiateDirectChat(userID: alice.id, peerID: 999)
        }
        #expect(try store.count("chats") == 0)
        #expect(try store.count("chat_members") == 0)
    }

    @Test func groupIncludesTheCreatorOnce() throws {
        let group = try store.createGroup(creatorID: alice.id, name: "Team", participants: [carol.id, bob.id, carol.id, alice.id])
        #expect(group.kind == .group)
        #expect(group.name == "Team")
        #expect(group.participants == [alice.id, bob.id, carol.id])
        #expect(try store.chat(id: group.id) == group)
        #expect(isRFC3339UTC(group.createdAt))

        let solo = try store.createGroup(creatorID: bob.id, name: "Notes", participants: [])
        #expect(solo.participants == [bob.id])
    }

    @Test func groupWithAnUnknownParticipantIsRefusedAndWritesNothing() throws {
        #expect(throws: MessengerError.invalid("unknown participant ids: 404")) {
            try store.createGroup(creatorID: alice.id, name: "Team", participants: [bob.id, 404])
        }
        #expect(try store.count("chats") == 0)
        #expect(try store.count("chat_members") == 0)
    }

    @Test func groupsAreNotDirectChats() throws {
        _ = try store.createGroup(creatorID: alice.id, name: "Pair", participants: [bob.id])
        #expect(try store.directChatID(between: alice.id, and: bob.id) == nil)
        #expect(try store.initiateDirectChat(userID: alice.id, peerID: bob.id).created)
    }

    @Test func listsOnlyTheUsersChatsOldestFirst() throws {
        let direct = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
        let group = try store.createGroup(creatorID: carol.id, name: "G", participants: [alice.id]).id
        let other = try store.initiateDirectChat(userID: bob.id, peerID: carol.id).chatID

        #expect(try store.chats(forUser: alice.id).map(\.id) == [direct, group])
        #expect(try store.chats(forUser: bob.id).map(\.id) == [direct, other])
        #expect(try store.chats(forUser: carol.id).map(\.id) == [group, other])
        #expect(try store.chats(forUser: 999).isEmpty)
    }

    @Test func accessDistinguishesUnknownFromForbidden() throws {
        let chat = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
        #expect(try store.accessibleChat(id: chat, userID: alice.id).id == chat)
        #expect(throws: MessengerError.forbidden("you are not a member of chat \(chat)")) {
            try store.accessibleChat(id: chat, userID: carol.id)
        }
        #expect(throws: MessengerError.notFound("chat 777 not found")) { try store.accessibleChat(id: 777, userID: alice.id) }
        #expect(try store.isMember(chatID: chat, userID: bob.id))
        #expect(!(try store.isMember(chatID: chat, userID: carol.id)))
    }

    // MARK: The protocol-2 chat list

    private func order(_ userID: Int64, limit: Int? = nil, before: Int64? = nil) throws -> [Int64] {
        try store.chatViews(forUser: userID, limit: limit, beforeChatID: before).map(\.chat.id)
    }

    @Test func chatListIsNewestActivityFirstAndPagesInTheSameOrder() throws {
        let groups = try (0..<5).map { try store.createGroup(creatorID: alice.id, name: "g\($0)", participants: [bob.id]).id }
        #expect(try order(bob.id) == groups.reversed())  // no messages: newest creation first
        _ = try store.send("in 1", from: alice.id, to: groups[1])
        _ = try store.send("in 3", from: alice.id, to: groups[3])
        _ = try store.send("in 0", from: bob.id, to: groups[0])
        let expected = [groups[0], groups[3], groups[1], groups[4], groups[2]]
        #expect(try order(bob.id) == expected)
        #expect(try order(bob.id, limit: 2) == Array(expected[0..<2]))
        #expect(try order(bob.id, limit: 2, before: expected[1]) == Array(expected[2..<4]))
        #expect(try order(bob.id, limit: 2, before: expected[3]) == [expected[4]])
        #expect(try order(bob.id, before: expected[4]) == [])
        #expect(throws: MessengerError.self) { try order(bob.id, before: 999) }
        let first = try #require(try store.chatViews(forUser: bob.id, limit: 1).first)
        #expect(first.lastMessage?.content == "in 0")
        #expect(first.unreadCount == 0)  // bob's own
    }

    /// A chat's last message in the list is the message as history reads it: its files in
    /// order and its reactions, in the whole list and in a page alike.
    @Test func lastMessagesCarryTheirFilesAndReactions() throws {
        let plain = try store.createGroup(creatorID: alice.id, name: "plain", participants: [bob.id]).id
        let withFiles = try store.createGroup(creatorID: alice.id, name: "files", participants: [bob.id]).id
        let reacted = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
        let empty = try store.createGroup(creatorID: alice.id, name: "empty", participants: [bob.id]).id
        _ = try store.send("plain", from: alice.id, to: plain)
        let one = try store.upload(by: alice.id, name: "one.png"), two = try store.upload(by: alice.id, name: "two.bin", kind: .file)
        let filed = try store.send("two files", from: alice.id, to: withFiles, files: [.id(two.id), .id(one.id)]).message
        let liked = try store.send("like me", from: alice.id, to: reacted).message
        _ = try store.setReaction(chatID: reacted, messageID: liked.id, by: bob.id, emoji: "👍", present: true)
        _ = try store.setReaction(chatID: reacted, messageID: liked.id, by: alice.id, emoji: "👍", present: true)
        for views in [try store.chatViews(forUser: bob.id), try store.chatViews(forUser: bob.id, limit: 10)] {
            #expect(views.map(\.chat.id) == [reacted, withFiles, plain, empty])
            for view in views {
                #expect(view.lastMessage == (try view.lastMessage.flatMap { try store.message(id: $0.id) }))
            }
            #expect(views[0].lastMessage?.reactions.first?.userIDs == [bob.id, alice.id])
            #expect(views[1].lastMessage?.files.map(\.id) == [two.id, one.id])
            #expect(views[1].lastMessage?.id == filed.id)
            #expect(views[2].lastMessage?.content == "plain")
            #expect(views[3].lastMessage == nil)
            #expect(views.map(\.unreadCount) == [1, 1, 1, 0])
        }
    }

    @Test func deletingTheLastMessageMovesTheChatBackAndPruningCannotBreakIt() throws {
        let older = try store.createGroup(creatorID: alice.id, name: "older", participants: [bob.id]).id
        let newer = try store.createGroup(creatorID: alice.id, name: "newer", participants: [bob.id]).id
        let kept = try store.send("kept", from: alice.id, to: older).message
        _ = try store.send("newer", from: alice.id, to: newer)
        let gone = try store.send("gone", from: alice.id, to: older).message
        #expect(try order(bob.id) == [older, newer])
        try store.deleteMessage(chatID: older, messageID: gone.id, by: alice.id)
        #expect(try order(bob.id) == [newer, older])
        #expect(try store.chatViews(forUser: bob.id).last?.lastMessage?.id == kept.id)
        try store.deleteMessage(chatID: older, messageID: kept.id, by: alice.id)
        #expect(try store.chatViews(forUser: bob.id).last?.lastMessage == nil)  // back to its creation

        // Once the events are pruned, a chat whose activity can no longer be placed goes last.
        let third = try store.createGroup(creatorID: alice.id, name: "third", participants: [bob.id]).id
        let a = try store.send("a", from: alice.id, to: third).message
        let b = try store.send("b", from: alice.id, to: third).message
        #expect(try store.pruneEvents(olderThan: -10, limit: 1_000_000) > 0)
        try store.deleteMessage(chatID: third, messageID: b.id, by: alice.id)
        let views = try store.chatViews(forUser: bob.id)
        #expect(views.last?.chat.id == third)
        #expect(views.last?.lastMessage?.id == a.id)
    }
}
