import NIOCore
import NIOWebSocket

/// A WebSocket connection as the rest of the relay sees it: something to send text frames
/// to and to close, from any thread. Everything that touches the channel hops onto its
/// event loop; the `closing` flag lives there too.
final class ConnectionHandle: Sendable, Hashable {
    let channel: Channel
    /// The channel's event loop, kept: `channel.eventLoop` is a protocol call, and fan-out
    /// asks for it once per recipient.
    let eventLoop: EventLoop
    private let limits: RelayLimits
    private let metrics: RelayMetrics
    private let closing: NIOLoopBoundBox<Bool>
    /// The close code we sent, if we started the closing handshake.
    private let sentClose: NIOLoopBoundBox<CloseCode?>
    /// Where encoded frames enter the pipeline: the frame encoder's context, so that writes
    /// skip the encoder and go straight to the socket. Nil when there is no encoder (tests).
    private let rawWriter: NIOLoopBound<ChannelHandlerContext>?

    /// Must be created on the channel's event loop.
    init(channel: Channel, limits: RelayLimits, metrics: RelayMetrics = .disabled) {
        self.channel = channel
        eventLoop = channel.eventLoop
        self.limits = limits
        self.metrics = metrics
        closing = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
        sentClose = NIOLoopBoundBox(nil, eventLoop: channel.eventLoop)
        rawWriter = (try? channel.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self))
            .map { NIOLoopBound($0, eventLoop: channel.eventLoop) }
    }

    var isClosing: Bool { closing.value }

    /// The code of the close frame we sent first, if we did. On the event loop only.
    var sentCloseCode: CloseCode? { sentClose.value }

    /// Queues one frame encoded by `TextFrame`. On the event loop only; the caller flushes.
    ///
    /// A connection whose unsent data passed `maxQueuedBytes` (the channel's high-water mark)
    /// is too slow to keep up: it is closed with 4008 rather than buffered without bound. That
    /// frame, and every later one to the closing socket, counts as an outbound queue drop.
    func writeOnLoop(_ frame: ByteBuffer) {
        guard !closing.value, channel.isActive else {
            if sentClose.value == .tooSlow { metrics.outboundDrops.increment() }
            return
        }
        guard channel.isWritable else {
            metrics.outboundDrops.increment()
            return closeOnLoop(.tooSlow)
        }
        if let rawWriter {
            rawWriter.value.write(NIOAny(frame), promise: nil)
        } else {
            channel.write(frame, promise: nil)
        }
    }

    /// Flushes what `writeOnLoop` queued, from where it entered the pipeline. On the event
    /// loop only.
    func flushOnLoop() {
        if let rawWriter {
            rawWriter.value.flush()
        } else {
            channel.flush()
        }
    }

    /// Sends one frame encoded by `TextFrame`, from any thread.
    func send(_ frame: ByteBuffer) {
        eventLoop.execute {
            self.writeOnLoop(frame)
            self.flushOnLoop()
        }
    }

    /// Starts the closing handshake with `code`; the socket is dropped if the peer does not
    /// answer within the close timeout. On the event loop only.
    func closeOnLoop(_ code: CloseCode) {
        guard !closing.value else { return }
        closing.value = true
        sentClose.value = code
        channel.writeAndFlush(Self.closeFrame(code, allocator: channel.allocator), promise: nil)
        let channel = self.channel
        channel.eventLoop.scheduleTask(in: limits.closeTimeout) { channel.close(promise: nil) }
    }

    /// Sends a close frame with `code` and ends our output, when no answer can be read
    /// because the frame decoder failed. The socket is dropped when nginx closes its side, or
    /// at the close timeout; until then what arrives is read and thrown away. (Closing at
    /// once, with the rest of an oversized frame unread, resets the socket, and nginx could
    /// then drop the client's connection before passing the close frame on.) On the event
    /// loop only.
    func closeWithoutHandshake(_ code: CloseCode) {
        guard !closing.value else { return }
        closing.value = true
        sentClose.value = code
        let channel = self.channel
        channel.writeAndFlush(Self.closeFrame(code, allocator: channel.allocator)).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
        }
        channel.eventLoop.scheduleTask(in: limits.closeTimeout) { channel.close(promise: nil) }
    }

    private static func closeFrame(_ code: CloseCode, allocator: ByteBufferAllocator) -> WebSocketFrame {
        var data = allocator.buffer(capacity: 2 + code.reason.utf8.count)
        data.write(webSocketErrorCode: code.code)
        data.writeString(code.reason)
        return WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
    }

    func close(_ code: CloseCode) {
        eventLoop.execute { self.closeOnLoop(code) }
    }

    static func == (lhs: ConnectionHandle, rhs: ConnectionHandle) -> Bool { lhs === rhs }

    func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(self))
    }
}
