import NIOCore
import NIOWebSocket

/// One client WebSocket after the upgrade: masks every frame it sends (RFC 6455 §5.3),
/// answers pings, flushes once per burst of reads, and runs the closing handshake. What
/// to send and what to make of the server's frames is its `behavior`'s business.
final class WebSocketClient: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let behavior: any SocketBehavior
    private var context: ChannelHandlerContext?
    private var masks = FastRandom()
    private var inReadBurst = false
    private var needsFlush = false
    private var closeSent = false
    private(set) var isOpen = true
    /// Frames the server sent that LoadGen did not expect (binary, fragmented, undecodable).
    private(set) var protocolErrors = 0

    init(behavior: any SocketBehavior) {
        self.behavior = behavior
    }

    var allocator: ByteBufferAllocator { context?.channel.allocator ?? ByteBufferAllocator() }

    /// Sends a text frame; inside a read burst the flush waits for `channelReadComplete`.
    func send(text: ByteBuffer) {
        guard let context, isOpen, !closeSent else { return }
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(using: &masks), data: text)
        context.write(wrapOutboundOut(frame), promise: nil)
        if inReadBurst {
            needsFlush = true
        } else {
            context.flush()
        }
    }

    /// Starts the closing handshake (1000); the socket is dropped if the server has not
    /// finished it within `timeout`.
    func close(timeout: TimeAmount = .seconds(3)) {
        guard let context, isOpen, !closeSent else { return }
        closeSent = true
        var data = context.channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: .normalClosure)
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(using: &masks), data: data)
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        let channel = context.channel
        context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inReadBurst = true
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text where !frame.fin:
            // The relay sends whole frames; a fragment would be read as a broken message.
            protocolErrors += 1
        case .text:
            let payload = frame.unmaskedData
            payload.withUnsafeReadableBytes { behavior.received(text: $0, on: self) }
        case .ping:
            var payload = frame.unmaskedData
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(using: &masks),
                                      data: payload.readSlice(length: payload.readableBytes) ?? payload)
            context.write(wrapOutboundOut(pong), promise: nil)
            needsFlush = true
        case .connectionClose:
            if closeSent {
                context.close(promise: nil)
            } else {
                // The server closes first: echo its code, then drop the connection.
                closeSent = true
                var payload = frame.unmaskedData
                let code = payload.readSlice(length: min(2, payload.readableBytes)) ?? payload
                let echo = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(using: &masks), data: code)
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(echo)).whenComplete { _ in channel.close(promise: nil) }
            }
        case .pong:
            break
        default:
            protocolErrors += 1
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadBurst = false
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if isOpen {
            isOpen = false
            behavior.closed(self)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        protocolErrors += 1
        context.close(promise: nil)
    }
}
