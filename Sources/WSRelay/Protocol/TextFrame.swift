import NIOCore

/// A complete server-to-client WebSocket text frame, header included, encoded once.
///
/// A server frame is unmasked, so its bytes are the same for every recipient: fan-out
/// writes one shared buffer to a thousand sockets instead of asking NIO's frame encoder to
/// build a header for each (RFC 6455 §5.2).
enum TextFrame {
    static func encode(_ payload: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: payload.count + 10)
        buffer.writeInteger(UInt8(0x81))  // FIN + text
        switch payload.count {
        case ..<126:
            buffer.writeInteger(UInt8(payload.count))
        case ..<65_536:
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(payload.count))
        default:
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(payload.count))
        }
        buffer.writeBytes(payload)
        return buffer
    }
}
