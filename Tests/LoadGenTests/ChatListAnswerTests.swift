import Testing

@testable import LoadGen

@Suite struct ChatListAnswerTests {
    private static func chat(_ id: Int, unread: Int) -> String {
        #"{"id":\#(id),"name":"g","chat_type":"group","created_at":"t","participants":[1,2],"last_message":{"id":9,"chat_id":\#(id),"content":"unread"},"unread_count":\#(unread),"last_read_id":0,"my_role":"member"}"#
    }

    private static func isComplete(_ chats: [String], expected: Int) -> Bool {
        Array(("[" + chats.joined(separator: ",") + "]").utf8).withUnsafeBytes {
            ChatListAnswer.isComplete($0, expected: expected)
        }
    }

    @Test func everyChatListedWithUnreadMessagesIsComplete() {
        #expect(Self.isComplete((1...3).map { Self.chat($0, unread: $0 * 10) }, expected: 3))
    }

    @Test func aMissingChatOrOneWithNothingUnreadIsNot() {
        #expect(!Self.isComplete((1...2).map { Self.chat($0, unread: 1) }, expected: 3))
        #expect(!Self.isComplete([Self.chat(1, unread: 1), Self.chat(2, unread: 0), Self.chat(3, unread: 1)],
                                 expected: 3))
        #expect(!Self.isComplete([], expected: 1))
    }
}
