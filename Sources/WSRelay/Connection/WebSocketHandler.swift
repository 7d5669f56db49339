import Domain
import NIOCore
import NIOWebSocket

/// One WebSocket connection after the upgrade: authentication by IDENTIFY, client frames,
/// ping/pong and the closing handshake. Messages go out through its `ConnectionHandle`.
final class WebSocketHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private enum State {
        case awaitingIdentify
        case ready(userID: Int64)
    }

    private let relay: RelayContext
    private var state: State
    /// The protocol and resume point the upgrade request asked for.
    private var stream: StreamOptions
    /// The delivery cursor when the upgrade request was accepted.
    private let acceptedAt: Int64
    private var handle: ConnectionHandle?
    private var identifyTimer: Scheduled<Void>?
    private var pingTask: RepeatedTask?
    /// When the peer last sent anything; by the event loop's clock, so tests can move it.
    private var lastHeard = NIODeadline.uptimeNanoseconds(0)
    /// The payload of the latest ping of the current read, answered when the read completes.
    private var pendingPong: ByteBuffer?

    /// `userID` when the upgrade request carried a valid token (header or `?token=`);
    /// `nil` when the client must send IDENTIFY. `acceptedAt`: the dispatcher's delivery
    /// cursor when the upgrade was accepted, so that events committed while the handshake
    /// completed are still delivered.
    init(relay: RelayContext, userID: Int64?, stream: StreamOptions = StreamOptions(), acceptedAt: Int64) {
        self.relay = relay
        self.stream = stream
        self.acceptedAt = acceptedAt
        state = userID.map { .ready(userID: $0) } ?? .awaitingIdentify
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let handle = ConnectionHandle(channel: context.channel, limits: relay.limits)
        self.handle = handle
        lastHeard = context.eventLoop.now
        switch state {
        case .ready(let userID):
            join(handle, userID: userID, cursor: acceptedAt)
        case .awaitingIdentify:
            identifyTimer = context.eventLoop.scheduleTask(in: relay.limits.identifyTimeout) {
                handle.closeOnLoop(.identifyTimeout)
            }
        }
        let interval = relay.limits.pingInterval
        let channel = context.channel
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        pingTask = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            this.value.pingOrDrop(channel: channel, interval: interval)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        identifyTimer?.cancel()
        pingTask?.cancel()
        if case .ready(let userID) = state, let handle {
            relay.registry.remove(handle, userID: userID)
            relay.dispatcher.signal(.disconnected(userID: userID))
        }
        handle = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        lastHeard = context.eventLoop.now
        switch frame.opcode {
        case .text:
            handleText(frame.unmaskedData, context: context)
        case .binary:
            reply(.error(message: "binary frames are not supported; send JSON text frames", nonce: nil), context: context)
        case .ping:
            // Answered once per read, for the latest ping in it (RFC 6455 5.5.3 allows a pong
            // for only the most recent): a peer flooding thousands of pings in one burst costs
            // one write, not one each, and holds no other socket of this event loop up.
            pendingPong = frame.unmaskedData
        case .connectionClose:
            handleClose(frame, context: context)
        default:
            break  // pong: lastHeard is enough; continuation: reassembled by the aggregator
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        sendPendingPong(context: context)
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        sendPendingPong(context: context)
        context.fireChannelWritabilityChanged()
    }

    /// The pong for the latest ping, once the socket is writable: a peer that does not read
    /// what it is sent gets one pong when it reads again, not one per ping piled up in memory.
    private func sendPendingPong(context: ChannelHandlerContext) {
        guard var data = pendingPong, context.channel.isWritable else { return }
        pendingPong = nil
        guard let handle, !handle.isClosing else { return }
        let pong = WebSocketFrame(fin: true, opcode: .pong, data: data.readSlice(length: data.readableBytes) ?? data)
        context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        relay.logger.debug("websocket error", metadata: ["error": "\(error)"])
        guard let handle else { return context.close(promise: nil) }
        switch error {
        case let invalid as NIOWebSocketError:
            // The frame decoder refused a frame header and reads no further frames, so the
            // peer's answer to our close would never be seen: end our side after the close
            // frame instead (see `ConnectionHandle.closeWithoutHandshake`).
            handle.closeWithoutHandshake(invalid == .invalidFrameLength ? .messageTooBig : .protocolError)
        case FrameGuard.Violation.controlFlood:
            // Nothing more is read from a flooding peer: every burst it keeps sending would
            // cost this event loop decoding until the close timeout.
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
            handle.closeWithoutHandshake(.policyViolation)
        case is FrameGuard.Violation:
            handle.closeWithoutHandshake(.protocolError)
        case let aggregation as NIOWebSocketFrameAggregator.Error:
            switch aggregation {
            case .accumulatedFrameSizeIsTooLarge, .tooManyFragments:
                // Fragments adding up to more than the frame limit: the same answer as one
                // oversized frame gets.
                handle.closeOnLoop(.messageTooBig)
            default:
                // A continuation with nothing to continue, or a new message in the middle of
                // a fragmented one.
                handle.closeWithoutHandshake(.protocolError)
            }
        case is ByteToMessageDecoderError where handle.isClosing:
            break  // the rest of a refused frame, read and dropped until the socket closes
        case is IOError, is ChannelError:
            context.close(promise: nil)  // the socket itself failed: nothing more can be sent
        default:
            handle.closeOnLoop(.internalError)
        }
    }

    private func handleText(_ data: ByteBuffer, context: ChannelHandlerContext) {
        guard let handle, !handle.isClosing else { return }
        guard isValidUTF8(data) else { return handle.closeOnLoop(.invalidPayload) }
        let frame: ClientFrame
        do {
            frame = try ClientFrame(parsing: data.readableBytesView)
        } catch {
            return reply(.error(message: error.message, nonce: error.nonce), context: context)
        }
        switch (frame, state) {
        case (.identify(let token, let asked), .awaitingIdentify):
            do {
                let claims = try relay.tokens.verify(token, now: relay.now())
                identifyTimer?.cancel()
                state = .ready(userID: claims.userID)
                stream = stream.merged(with: asked)
                // The cursor is read before READY goes out: a client that acts on READY (say,
                // creates a chat) must find what it caused after this cursor.
                let cursor = relay.dispatcher.deliveryCursor
                // Protocol 1: READY goes out first, here; everything committed from now on
                // follows it. Protocol 2: the storage thread sends READY with its seq.
                if stream.version == .v1 { reply(.ready(userID: claims.userID), context: context) }
                join(handle, userID: claims.userID, cursor: cursor)
            } catch {
                handle.closeOnLoop(.invalidToken)
            }
        case (.identify(let token, _), .ready(let userID)):
            // A client that sends a header token and IDENTIFY too, and waits for READY.
            guard let claims = try? relay.tokens.verify(token, now: relay.now()) else {
                return reply(.error(message: "invalid token in IDENTIFY", nonce: nil), context: context)
            }
            guard claims.userID == userID else {
                return reply(.error(message: "already identified as another user", nonce: nil), context: context)
            }
            let seq = stream.version == .v2 ? relay.dispatcher.deliveryCursor : nil
            reply(.ready(userID: userID, seq: seq), context: context)
        case (.send(let chatID, let draft), .ready(let userID)):
            submit(PendingSend(sender: handle, senderID: userID, target: .chat(chatID), draft: draft), context: context)
        case (.sendToUser(let username, let draft), .ready(let userID)):
            submit(PendingSend(sender: handle, senderID: userID, target: .user(username), draft: draft), context: context)
        case (.read(let chatID, let messageID), .ready(let userID)):
            relay.dispatcher.signal(.read(sender: handle, userID: userID, chatID: chatID, messageID: messageID))
        case (.typing(let chatID), .ready(let userID)):
            relay.dispatcher.signal(.typing(sender: handle, userID: userID, chatID: chatID))
        case (.send(_, let draft), .awaitingIdentify), (.sendToUser(_, let draft), .awaitingIdentify):
            reply(.error(message: "send IDENTIFY first", nonce: draft.nonce), context: context)
        case (.read, .awaitingIdentify), (.typing, .awaitingIdentify):
            reply(.error(message: "send IDENTIFY first", nonce: nil), context: context)
        }
    }

    /// Hands the connection to the storage thread: protocol 1 from `cursor` (the handshake's),
    /// protocol 2 from the client's `since` when it gave one.
    private func join(_ handle: ConnectionHandle, userID: Int64, cursor: Int64) {
        let start: Join.Start
        switch stream.version {
        case .v1: start = .handshake(cursor)
        case .v2: start = .ready(after: stream.since ?? cursor, resuming: stream.since != nil)
        }
        relay.dispatcher.join(Join(handle: handle, userID: userID, version: stream.version, start: start))
    }

    private func submit(_ send: PendingSend, context: ChannelHandlerContext) {
        if !relay.dispatcher.submit(send) {
            reply(.error(message: "server busy; retry", nonce: send.draft.nonce), context: context)
        }
    }

    private func handleClose(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        guard let handle, !handle.isClosing else {
            // The peer answered our close: the handshake is complete.
            context.close(promise: nil)
            return
        }
        // The peer started the handshake: echo its code, then close. A close frame must be
        // empty or carry a code a peer may send and a UTF-8 reason (RFC 6455 5.5.1, 7.4).
        var data = frame.unmaskedData
        if data.readableBytes > 0 {
            guard data.readableBytes >= 2, let number = data.getInteger(at: data.readerIndex, as: UInt16.self),
                  Self.isSendableCloseCode(number)
            else { return handle.closeWithoutHandshake(.protocolError) }
            guard isValidUTF8(data.readableBytesView.dropFirst(2)) else {
                return handle.closeWithoutHandshake(.invalidPayload)
            }
        }
        let code = data.readSlice(length: min(2, data.readableBytes)) ?? context.channel.allocator.buffer(capacity: 0)
        let echo = WebSocketFrame(fin: true, opcode: .connectionClose, data: code)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(echo)).whenComplete { _ in channel.close(promise: nil) }
    }

    /// Codes a peer may put in a close frame: the defined ones but 1004–1006 and 1015 (which
    /// never go on the wire), and the ranges for libraries and applications.
    private static func isSendableCloseCode(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: true
        default: false
        }
    }

    private func pingOrDrop(channel: Channel, interval: TimeAmount) {
        guard let handle else { return }
        if channel.eventLoop.now - lastHeard >= interval * 2 {
            handle.closeOnLoop(.pingTimeout)
            return
        }
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .ping, data: channel.allocator.buffer(capacity: 0)),
                              promise: nil)
    }

    private func reply(_ frame: ServerFrame, context: ChannelHandlerContext) {
        let text = context.channel.allocator.buffer(bytes: JSONWriter.encode(frame))
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: text)), promise: nil)
    }
}
