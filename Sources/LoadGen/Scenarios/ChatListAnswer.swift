/// Checks a `GET /chats?v=2` answer by byte search, as `ServerFrameScanner` reads frames: a
/// 2,000-chat list is about a megabyte, and a JSON parse of it would time the generator.
/// Every chat object carries one `"unread_count":N` (DESIGN.md), so the answer lists
/// `expected` chats when the key occurs that often; every chat of the run has a message from
/// someone else after the reader's marker, so none may read `0`.
enum ChatListAnswer {
    static func isComplete(_ body: UnsafeRawBufferPointer, expected: Int) -> Bool {
        ServerFrameScanner.count(unreadKey, in: body) == expected && ServerFrameScanner.count(noneUnread, in: body) == 0
    }

    private static let unreadKey = Array(#""unread_count":"#.utf8)
    private static let noneUnread = Array(#""unread_count":0,"#.utf8)
}
