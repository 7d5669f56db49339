import Logging
import Domain
import NIOCore
import NIOWebSocket
import Storage

/// One WebSocket connection after the upgrade: authentication by IDENTIFY, client frames,
/// ping/pong and the closing handshake. Messages go out through its `ConnectionHandle`.
final class WebSocketHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private enum State {
        case awaitingIdentify
        case ready(Identity)
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
    /// nginx's `$request_id` of the upgrade request (`X-Request-Id`), for the log line.
    private let requestID: String
    /// The close code the peer sent when it started the closing handshake.
    private var peerCloseCode: UInt16?
    /// When the socket opened (monotonic ns), for the log line's duration.
    private var openedAt: UInt64 = 0
    /// The payload of the latest ping of the current read, answered when the read completes.
    private var pendingPong: ByteBuffer?

    /// `identity` when the upgrade request carried a valid token (header or `?token=`);
    /// `nil` when the client must send IDENTIFY. `acceptedAt`: the dispatcher's delivery
    /// cursor when the upgrade was accepted, so that events committed while the handshake
    /// completed are still delivered.
    init(relay: RelayContext, identity: Identity?, stream: StreamOptions = StreamOptions(), acceptedAt: Int64,
         requestID: String = "-") {
        self.relay = relay
        self.requestID = requestID
        self.stream = stream
        self.acceptedAt = acceptedAt
        state = identity.map { .ready($0) } ?? .awaitingIdentify
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let handle = ConnectionHandle(channel: context.channel, limits: relay.limits, metrics: relay.metrics)
        self.handle = handle
        lastHeard = context.eventLoop.now
        openedAt = Elapsed.now()
        relay.metrics.connections.increment()
        relay.metrics.openSockets.increment()
        switch state {
        case .ready(let identity):
            join(handle, identity, cursor: acceptedAt)
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
        if case .ready(let identity) = state, let handle {
            relay.sessions.remove(handle, sessionID: identity.sessionID)
            relay.registry.remove(handle, userID: identity.userID)
            relay.dispatcher.signal(.disconnected(userID: identity.userID))
        }
        recordEnd()
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
                let identity = try Identity(token: token, tokens: relay.tokens, revokedSessions: relay.revokedSessions,
                                            now: relay.now())
                identifyTimer?.cancel()
                state = .ready(identity)
                stream = stream.merged(with: asked)
                // The cursor is read before READY goes out: a client that acts on READY (say,
                // creates a chat) must find what it caused after this cursor.
                let cursor = relay.dispatcher.deliveryCursor
                // Protocol 1: READY goes out first, here; everything committed from now on
                // follows it. Protocol 2: the storage thread sends READY with its seq.
                if stream.version == .v1 { reply(.ready(userID: identity.userID), context: context) }
                join(handle, identity, cursor: cursor)
            } catch {
                handle.closeOnLoop(error == .revoked ? .sessionRevoked : .invalidToken)
            }
        case (.identify(let token, _), .ready(let identity)):
            // A client that sends a header token and IDENTIFY too, and waits for READY.
            let userID = identity.userID
            guard let claims = try? Identity(token: token, tokens: relay.tokens, revokedSessions: relay.revokedSessions,
                                             now: relay.now())
            else {
                return reply(.error(message: "invalid token in IDENTIFY", nonce: nil), context: context)
            }
            guard claims.userID == userID else {
                return reply(.error(message: "already identified as another user", nonce: nil), context: context)
            }
            let seq = stream.version == .v2 ? relay.dispatcher.deliveryCursor : nil
            reply(.ready(userID: userID, seq: seq), context: context)
        case (.send(let chatID, let draft), .ready(let identity)):
            submit(PendingSend(sender: handle, senderID: identity.userID, target: .chat(chatID), draft: draft), context: context)
        case (.sendToUser(let username, let draft), .ready(let identity)):
            submit(PendingSend(sender: handle, senderID: identity.userID, target: .user(username), draft: draft),
                   context: context)
        case (.read(let chatID, let messageID), .ready(let identity)):
            relay.dispatcher.signal(.read(sender: handle, userID: identity.userID, chatID: chatID, messageID: messageID))
        case (.typing(let chatID), .ready(let identity)):
            relay.dispatcher.signal(.typing(sender: handle, userID: identity.userID, chatID: chatID))
        case (.send(_, let draft), .awaitingIdentify), (.sendToUser(_, let draft), .awaitingIdentify):
            reply(.error(message: "send IDENTIFY first", nonce: draft.nonce), context: context)
        case (.read, .awaitingIdentify), (.typing, .awaitingIdentify):
            reply(.error(message: "send IDENTIFY first", nonce: nil), context: context)
        }
    }

    /// Hands the connection to the storage thread: protocol 1 from `cursor` (the handshake's),
    /// protocol 2 from the client's `since` when it gave one.
    private func join(_ handle: ConnectionHandle, _ identity: Identity, cursor: Int64) {
        // Registered before the check, so that a revocation read in between is not missed:
        // either the check sees it, or the watcher finds this socket and closes it.
        relay.sessions.add(handle, sessionID: identity.sessionID)
        if relay.revokedSessions.isRevoked(identity.sessionID) { return handle.closeOnLoop(.sessionRevoked) }
        let userID = identity.userID
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
        peerCloseCode = data.getInteger(at: data.readerIndex, as: UInt16.self) ?? 1005  // 1005: no code given
        let code = data.readSlice(length: min(2, data.readableBytes)) ?? context.channel.allocator.buffer(capacity: 0)
        let echo = WebSocketFrame(fin: true, opcode: .connectionClose, data: code)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(echo)).whenComplete { _ in channel.close(promise: nil) }
    }

    /// The socket's one log line and its close in the metrics: the code it ended with and who
    /// sent it first (1006, `none`: dropped without a close frame). No token, no frame content.
    private func recordEnd() {
        let code: UInt16
        let initiator: String
        if let sent = handle?.sentCloseCode {
            code = UInt16(webSocketErrorCode: sent.code)
            initiator = "server"
        } else if let peerCloseCode {
            code = peerCloseCode
            initiator = "client"
        } else {
            code = 1006
            initiator = "none"
        }
        relay.metrics.openSockets.decrement()
        relay.metrics.recordClose(code: code, by: initiator)
        var metadata: Logger.Metadata = [
            "request_id": "\(requestID)", "route": "/ws", "status": "101", "protocol": "\(stream.version.rawValue)",
            "close_code": "\(code)", "closed_by": "\(initiator)",
            "duration_ms": "\(Elapsed.milliseconds(Elapsed.now() &- openedAt))",
        ]
        if case .ready(let identity) = state { metadata["user_id"] = "\(identity.userID)" }
        relay.logger.info("websocket", metadata: metadata)
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
