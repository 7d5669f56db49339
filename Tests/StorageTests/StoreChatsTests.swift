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
}
