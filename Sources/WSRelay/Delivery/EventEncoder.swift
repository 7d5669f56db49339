import Domain
import NIOCore
import Storage

/// Turns events and replies into complete WebSocket frames (`TextFrame`), in the shape each
/// protocol reads. Storage thread only: a protocol-2 CHAT frame reads the chat as its
/// recipient sees it.
struct EventEncoder {
    let store: Store
    let allocator = ByteBufferAllocator()

    /// The protocol-1 frame, or nil for kinds protocol 1 does not have: a message as the bare
    /// seed object, a chat as `{"op":"CHAT","d":chat}` — exactly today's frames.
    func v1Frame(_ event: Event) -> ByteBuffer? {
        switch (event.op, event.body) {
        case (.message, .message(let message)):
            var writer = JSONWriter(capacity: 256)
            message.encode(to: &writer)
            return TextFrame.encode(writer.bytes, allocator: allocator)
        case (.chat, .chat(let chat)):
            return encode(ServerFrame.chat(chat))
        default:
            return nil
        }
    }

    /// The protocol-2 frame `{"op","seq","d"}` for `userID`.
    func v2Frame(_ event: Event, for userID: Int64) throws -> ByteBuffer {
        TextFrame.encode(try event.frame { try store.chatView($0, for: userID) }, allocator: allocator)
    }

    func frame(_ event: Event, version: ProtocolVersion, for userID: Int64) throws -> ByteBuffer? {
        switch version {
        case .v1: v1Frame(event)
        case .v2: try v2Frame(event, for: userID)
        }
    }

    func encode(_ frame: ServerFrame) -> ByteBuffer {
        TextFrame.encode(JSONWriter.encode(frame), allocator: allocator)
    }
}
