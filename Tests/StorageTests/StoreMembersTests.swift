import Domain
import Storage
import Testing

/// Group administration and blocking, with their events.
@Suite struct StoreMembersTests {
    private let database: TestDatabase
    private let store: Store
    private let owner: User, admin: User, member: User, outsider: User
    private let group: Int64

    init() throws {
        database = try TestDatabase()
        store = try database.migratedStore()
        let users = try store.users("olga", "adam", "mia", "xavier")
        (owner, admin, member, outsider) = (users[0], users[1], users[2], users[3])
        group = try store.createGroup(creatorID: owner.id, name: "G", participants: [admin.id, member.id]).id
        _ = try store.setRole(chatID: group, userID: admin.id, role: .admin, by: owner.id)
    }

    private func roles() throws -> [Int64: ChatRole] {
        Dictionary(uniqueKeysWithValues: try store.chatMembers(chatID: group, userID: owner.id).map { ($0.userID, $0.role) })
    }

    @Test func theCreatorOwnsAndRolesAreTheOwners() throws {
        #expect(try roles() == [owner.id: .owner, admin.id: .admin, member.id: .member])
        #expect(throws: MessengerError.self) { try store.setRole(chatID: group, userID: member.id, role: .admin, by: admin.id) }
        _ = try store.setRole(chatID: group, userID: member.id, role: .owner, by: owner.id)
        #expect(try roles() == [owner.id: .admin, admin.id: .admin, member.id: .owner])
    }

    @Test func addingIsForOwnersAndAdminsAndChecksEveryID() throws {
        #expect(throws: MessengerError.forbidden("only the group's owner or an admin may add members")) {
            try store.addMembers(chatID: group, by: member.id, userIDs: [outsider.id])
        }
        #expect(throws: MessengerError.invalid("unknown user ids: 999")) {
            try store.addMembers(chatID: group, by: admin.id, userIDs: [outsider.id, 999])
        }
        #expect(try store.chatMembers(chatID: group, userID: owner.id).count == 3)
        let before = try store.latestSeq()
        let after = try store.addMembers(chatID: group, by: admin.id, userIDs: [outsider.id, member.id])
        #expect(after.map(\.userID).contains(outsider.id) && after.count == 4)
        let events = try store.events(after: before, limit: 10).events
        #expect(events.map(\.op) == [.chat])
        // The new member sees the group's events from that CHAT event on.
        #expect(try store.events(visibleTo: outsider.id, after: 0, through: try store.latestSeq()).map(\.seq) == [events[0].seq])
    }

    @Test func removalRulesAndTheirEvents() throws {
        #expect(throws: MessengerError.forbidden("an admin cannot remove the owner or another admin")) {
            try store.removeMember(chatID: group, userID: owner.id, by: admin.id)
        }
        #expect(throws: MessengerError.forbidden("only the group's owner or an admin may remove members")) {
            try store.removeMember(chatID: group, userID: admin.id, by: member.id)
        }
        #expect(throws: MessengerError.forbidden("you are not a member of chat \(group)")) {
            try store.removeMember(chatID: group, userID: member.id, by: outsider.id)
        }
        let before = try store.latestSeq()
        try store.removeMember(chatID: group, userID: member.id, by: admin.id)
        let events = try store.events(after: before, limit: 10).events
        #expect(events.map(\.op) == [.chatRemoved, .chat])
        #expect(events[0].audience == .user(member.id))
        #expect(throws: MessengerError.self) { try store.accessibleChat(id: group, userID: member.id) }
        #expect(throws: MessengerError.notFound("user \(member.id) is not a member of chat \(group)")) {
            try store.removeMember(chatID: group, userID: member.id, by: owner.id)
        }
        // The removed member's stream: the removal, then nothing more of the group.
        _ = try store.send("after", from: owner.id, to: group)
        let theirs = try store.events(visibleTo: member.id, after: before, through: try store.latestSeq())
        #expect(theirs.map(\.op) == [.chatRemoved])
    }

    @Test func theOwnerLeavingHandsOverToTheLongestStandingAdmin() throws {
        try store.removeMember(chatID: group, userID: owner.id, by: owner.id)
        #expect(try store.chatMembers(chatID: group, userID: admin.id).map(\.role) == [.owner, .member])
        try store.removeMember(chatID: group, userID: admin.id, by: admin.id)
        #expect(try store.chatMembers(chatID: group, userID: member.id).map(\.role) == [.owner])
        try store.removeMember(chatID: group, userID: member.id, by: member.id)
        #expect(try store.memberships(chatID: group).isEmpty)
    }

    @Test func directChatsHaveNothingToManage() throws {
        let direct = try store.initiateDirectChat(userID: owner.id, peerID: member.id).chatID
        #expect(throws: MessengerError.invalid("a direct chat has no members to manage")) {
            try store.renameChat(chatID: direct, name: "x", by: owner.id)
        }
    }

    @Test func aBlockedUserCannotSendDirectlyOrStartAChat() throws {
        let direct = try store.initiateDirectChat(userID: owner.id, peerID: member.id).chatID
        try store.setBlock(blockerID: owner.id, userID: member.id, blocked: true)
        try store.setBlock(blockerID: owner.id, userID: member.id, blocked: true)  // idempotent
        #expect(try store.blockedUsers(by: owner.id).map(\.id) == [member.id])
        #expect(throws: MessengerError.forbidden("blocked: this user does not accept your messages")) {
            try store.send("hi", from: member.id, to: direct)
        }
        _ = try store.send("still mine", from: owner.id, to: direct)
        _ = try store.send("groups are fine", from: member.id, to: group)
        try store.setBlock(blockerID: outsider.id, userID: admin.id, blocked: true)
        #expect(throws: MessengerError.forbidden("blocked: this user does not accept new chats from you")) {
            try store.initiateDirectChat(userID: admin.id, peerID: outsider.id)
        }
        #expect(throws: MessengerError.invalid("you cannot block yourself")) {
            try store.setBlock(blockerID: owner.id, userID: owner.id, blocked: true)
        }
        try store.setBlock(blockerID: owner.id, userID: member.id, blocked: false)
        _ = try store.send("again", from: member.id, to: direct)
    }
}
