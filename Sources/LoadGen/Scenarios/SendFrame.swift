import NIOCore

/// The text of the sends the WebSocket scenarios make:
/// `{"chat_id":C,"content":"<tag><seq>","nonce":"n<seq>"}`. The sequence number in the content
/// and the nonce lets `ServerFrameScanner` match answers by byte search.
struct SendFrame {
    private let head: [UInt8]

    /// `tag`: one letter telling the scenarios' messages apart in the database.
    init(chatID: Int64, tag: Character) {
        head = Array(#"{"chat_id":\#(chatID),"content":"\#(tag)"#.utf8)
    }

    func encode(_ sequence: UInt64, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: head.count + 60)
        buffer.writeBytes(head)
        buffer.writeDecimal(sequence)
        buffer.writeStaticString(#"","nonce":"n"#)
        buffer.writeDecimal(sequence)
        buffer.writeStaticString(#""}"#)
        return buffer
    }
}
