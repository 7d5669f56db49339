import NIOCore
import NIOWebSocket

/// One connection of the floor relay (`FloorServer`): answers sends, pings and closes.
final class FloorHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let chats: FloorChats
    private var joined: Set<Int64> = []

    init(chats: FloorChats) {
        self.chats = chats
    }

    func channelInactive(context: ChannelHandlerContext) {
        chats.remove(context.channel, from: joined)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            answer(frame.unmaskedData, context: context)
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)),
                                  promise: nil)
        case .connectionClose:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: frame.unmaskedData)))
                .whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
        default:
            break
        }
    }

    private func answer(_ text: ByteBuffer, context: ChannelHandlerContext) {
        let bytes = text.readableBytesView
        guard let chatID = Self.integer(after: Self.chatIDMarker, in: bytes) else { return }
        let content = Self.string(after: Self.contentMarker, in: bytes) ?? []
        let nonce = Self.string(after: Self.nonceMarker, in: bytes)
        joined.insert(chatID)
        let (id, others) = chats.post(from: context.channel, to: chatID)

        var message = context.channel.allocator.buffer(capacity: 128 + content.count)
        message.writeString(#"{"id":\#(id),"chat_id":\#(chatID),"sender_id":0,"content":""#)
        message.writeBytes(content)
        message.writeString(#"","timestamp":"2026-01-01T00:00:00Z","files":[]}"#)
        context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: message)), promise: nil)
        if let nonce {
            var ack = context.channel.allocator.buffer(capacity: 48 + nonce.count)
            ack.writeString(#"{"op":"ACK","d":{"nonce":""#)
            ack.writeBytes(nonce)
            ack.writeString(#"","id":\#(id)}}"#)
            context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: ack)), promise: nil)
        }
        context.flush()
        for peer in others {
            peer.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: message), promise: nil)
        }
    }

    private static let chatIDMarker = Array(#""chat_id":"#.utf8)
    private static let contentMarker = Array(#""content":""#.utf8)
    private static let nonceMarker = Array(#""nonce":""#.utf8)

    private static func integer(after marker: [UInt8], in bytes: ByteBufferView) -> Int64? {
        guard var index = end(of: marker, in: bytes) else { return nil }
        var value: Int64 = 0
        var digits = 0
        while index < bytes.endIndex, (0x30...0x39).contains(bytes[index]), digits < 18 {
            value = value * 10 + Int64(bytes[index] - 0x30)
            digits += 1
            index += 1
        }
        return digits > 0 ? value : nil
    }

    /// The bytes of a JSON string value up to its closing quote (LoadGen sends no escapes).
    private static func string(after marker: [UInt8], in bytes: ByteBufferView) -> ArraySlice<UInt8>? {
        guard let start = end(of: marker, in: bytes),
              let close = bytes[start...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        return Array(bytes[start..<close])[...]
    }

    private static func end(of marker: [UInt8], in bytes: ByteBufferView) -> ByteBufferView.Index? {
        guard bytes.count >= marker.count else { return nil }
        var index = bytes.startIndex
        while index <= bytes.endIndex - marker.count {
            if bytes[index] == marker[0], bytes[index..<(index + marker.count)].elementsEqual(marker) {
                return index + marker.count
            }
            index += 1
        }
        return nil
    }
}

@available(*, unavailable)
extension FloorHandler: Sendable {}
