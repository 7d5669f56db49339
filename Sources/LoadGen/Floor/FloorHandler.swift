import NIOCore
import NIOWebSocket

/// One connection of the floor relay (`FloorServer`): answers sends, pings and closes.
final class FloorHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let chats: FloorChats
    private var joined: Set<Int64> = []
    private var peer: FloorPeer?

    init(chats: FloorChats) {
        self.chats = chats
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let peer = FloorPeer(channel: context.channel)
        self.peer = peer
        chats.opened(peer)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let peer { chats.remove(peer, from: joined) }
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
        guard let peer else { return }
        joined.insert(chatID)
        let (id, others) = chats.post(from: peer, to: chatID)

        var json: [UInt8] = []
        json.reserveCapacity(128 + content.count)
        json += Array(#"{"id":\#(id),"chat_id":\#(chatID),"sender_id":0,"content":""#.utf8)
        json += content
        json += Array(#"","timestamp":"2026-01-01T00:00:00Z","files":[]}"#.utf8)
        let message = Self.textFrame(json, allocator: context.channel.allocator)
        peer.writeOnLoop(message)
        if let nonce {
            let ack = Array(#"{"op":"ACK","d":{"nonce":""#.utf8) + nonce + Array(#"","id":\#(id)}}"#.utf8)
            peer.writeOnLoop(Self.textFrame(ack, allocator: context.channel.allocator))
        }
        peer.flushOnLoop()
        send(message, to: others, from: context.eventLoop)
    }

    /// Writes `frame` to every one of `peers` as WSRelay's outbox does: one task per event
    /// loop, each with its own copy of the bytes (no buffer shared between cores), the frame
    /// encoded once and written below NIO's frame encoder.
    private func send(_ frame: ByteBuffer, to peers: [FloorPeer], from loop: EventLoop) {
        var byLoop: [(loop: EventLoop, peers: [FloorPeer])] = []
        for peer in peers {
            if let slot = byLoop.firstIndex(where: { $0.loop === peer.channel.eventLoop }) {
                byLoop[slot].peers.append(peer)
            } else {
                byLoop.append((peer.channel.eventLoop, [peer]))
            }
        }
        for (peerLoop, peers) in byLoop {
            let bytes = peerLoop === loop ? frame : ByteBuffer(bytes: frame.readableBytesView)
            let write: @Sendable () -> Void = {
                for peer in peers {
                    peer.writeOnLoop(bytes)
                    peer.flushOnLoop()
                }
            }
            if peerLoop === loop { write() } else { peerLoop.execute(write) }
        }
    }

    /// An unmasked server text frame, header included (RFC 6455 §5.2).
    private static func textFrame(_ payload: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: payload.count + 4)
        buffer.writeInteger(UInt8(0x81))
        if payload.count < 126 {
            buffer.writeInteger(UInt8(payload.count))
        } else {
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(payload.count))  // LoadGen's frames stay far below 64 KiB
        }
        buffer.writeBytes(payload)
        return buffer
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

/// One floor connection as the others see it: frames written below its frame encoder, on its
/// own event loop only.
final class FloorPeer: Sendable {
    let channel: Channel
    private let rawWriter: NIOLoopBound<ChannelHandlerContext>?

    /// Must be created on the channel's event loop, after the upgrade.
    init(channel: Channel) {
        self.channel = channel
        rawWriter = (try? channel.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self))
            .map { NIOLoopBound($0, eventLoop: channel.eventLoop) }
    }

    func writeOnLoop(_ frame: ByteBuffer) {
        guard let rawWriter, channel.isActive else { return }
        rawWriter.value.write(NIOAny(frame), promise: nil)
    }

    func flushOnLoop() {
        rawWriter?.value.flush()
    }
}
