import Domain
import Foundation
import Storage
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing
@testable import WSRelay

/// The connection handler on NIO's `EmbeddedChannel`: IDENTIFY, refusals, timeouts.
@Suite struct WebSocketHandlerTests {
    let tokens = TokenService(secret: Array("0123456789abcdef0123456789abcdef".utf8))
    let registry = ConnectionRegistry()
    let relay: RelayContext
    let database: TestDatabase

    init() throws {
        let database = try TestDatabase()
        self.database = database
        let dispatcher = try Dispatcher(store: database.store(), registry: registry, limits: RelayLimits(),
                                        logger: Logger(label: "test"))
        relay = RelayContext(registry: registry, dispatcher: dispatcher, tokens: tokens,
                             revokedSessions: try RevokedSessions(path: database.path), sessions: SessionSockets(),
                             limits: RelayLimits(), logger: Logger(label: "test"), now: { 1_000 })
    }

    func channel(userID: Int64? = nil) throws -> EmbeddedChannel {
        let identity = userID.map { Identity(userID: $0, sessionID: $0 * 100) }
        let channel = EmbeddedChannel(handler: WebSocketHandler(relay: relay, identity: identity, acceptedAt: 0))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    func send(_ text: String, to channel: EmbeddedChannel, opcode: WebSocketOpcode = .text) throws {
        try channel.writeInbound(WebSocketFrame(fin: true, opcode: opcode, data: ByteBuffer(string: text)))
    }

    func nextText(_ channel: EmbeddedChannel) throws -> String? {
        guard let frame = try channel.readOutbound(as: WebSocketFrame.self) else { return nil }
        #expect(frame.opcode == .text)
        return String(buffer: frame.unmaskedData)
    }

    func closeCode(_ frame: WebSocketFrame?) -> UInt16? {
        guard let frame, frame.opcode == .connectionClose else { return nil }
        var data = frame.unmaskedData
        return data.readInteger(as: UInt16.self)
    }

    /// READY at once; the registration itself goes through the dispatcher (`DispatcherTests`).
    @Test func identifyAnswersReady() throws {
        let channel = try channel()
        try send(#"{"op":"IDENTIFY","d":{"token":"\#(tokens.issue(userID: 4, username: "dan", sessionID: 4, now: 1_000))"}}"#,
                 to: channel)
        #expect(try nextText(channel) == #"{"op":"READY","d":{"user_id":4}}"#)
        // Identifying again: the same user is answered READY again, anyone else an ERROR.
        try send(#"{"op":"IDENTIFY","d":{"token":"\#(tokens.issue(userID: 4, username: "dan", sessionID: 4, now: 1_000))"}}"#, to: channel)
        #expect(try nextText(channel) == #"{"op":"READY","d":{"user_id":4}}"#)
        try send(#"{"op":"IDENTIFY","d":{"token":"\#(tokens.issue(userID: 5, username: "eve", sessionID: 5, now: 1_000))"}}"#, to: channel)
        #expect(try nextText(channel)?.contains("already identified as another user") == true)
        try send(#"{"op":"IDENTIFY","d":{"token":"x"}}"#, to: channel)
        #expect(try nextText(channel)?.contains("invalid token") == true)
    }

    @Test func badIdentifyClosesWith4501() throws {
        let channel = try channel()
        try send(#"{"op":"IDENTIFY","d":{"token":"not-a-token"}}"#, to: channel)
        #expect(closeCode(try channel.readOutbound(as: WebSocketFrame.self)) == 4501)
        #expect(registry.count == 0)
        // The peer does not answer: the socket is dropped after the close timeout.
        channel.embeddedEventLoop.advanceTime(by: RelayLimits().closeTimeout)
        #expect(!channel.isActive)
    }

    @Test func aRevokedSessionIsRefusedWith4502AndItsSocketsClosed() throws {
        let store = try database.store()
        let userID = try store.login(username: "dan").id
        let sessionID = try store.createSession(userID: userID, expiresAt: Int64(time(nil)) + 3_600)
        let token = tokens.issue(userID: userID, username: "dan", sessionID: sessionID, now: 1_000)
        let open = try channel()
        try send(#"{"op":"IDENTIFY","d":{"token":"\#(token)"}}"#, to: open)
        #expect(try nextText(open) == #"{"op":"READY","d":{"user_id":\#(userID)}}"#)
        // Revoked in the database, read as the watcher reads it, then the sockets closed.
        try store.revokeSession(sessionID, userID: userID)
        relay.revokedSessions.note([sessionID], expiresAt: Int64(time(nil)) + 3_600)
        relay.sessions.closeRevoked([sessionID])
        open.embeddedEventLoop.run()
        #expect(closeCode(try open.readOutbound(as: WebSocketFrame.self)) == 4502)
        // A new socket with the same token is refused with the same code.
        let late = try channel()
        try send(#"{"op":"IDENTIFY","d":{"token":"\#(token)"}}"#, to: late)
        #expect(closeCode(try late.readOutbound(as: WebSocketFrame.self)) == 4502)
    }

    @Test func aTokenWithoutASessionIsRefused() throws {
        let channel = try channel()
        try send(#"{"op":"IDENTIFY","d":{"token":"\#(tokens.issue(userID: 4, username: "dan", now: 1_000))"}}"#, to: channel)
        #expect(closeCode(try channel.readOutbound(as: WebSocketFrame.self)) == 4501)
    }

    @Test func anUnexpectedErrorClosesWith1011AndABrokenSocketAtOnce() throws {
        struct Unexpected: Error {}
        let channel = try channel(userID: 4)
        channel.pipeline.fireErrorCaught(Unexpected())
        #expect(closeCode(try channel.readOutbound(as: WebSocketFrame.self)) == 1011)
        channel.embeddedEventLoop.advanceTime(by: RelayLimits().closeTimeout)
        #expect(!channel.isActive)

        let broken = try self.channel(userID: 4)
        broken.pipeline.fireErrorCaught(IOError(errnoCode: ECONNRESET, reason: "read"))
        #expect(try broken.readOutbound(as: WebSocketFrame.self) == nil)
        #expect(!broken.isActive)
    }

    @Test func aFrameTheDecoderRefusesIsAnswered1009() throws {
        let channel = try channel(userID: 4)
        channel.pipeline.fireErrorCaught(NIOWebSocketError.invalidFrameLength)
        #expect(closeCode(try channel.readOutbound(as: WebSocketFrame.self)) == 1009)
        channel.pipeline.fireErrorCaught(NIOWebSocketError.invalidFrameLength)  // the rest of it
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)
    }

    @Test func silentClientIsClosedWith4001() throws {
        let channel = try channel()
        channel.embeddedEventLoop.advanceTime(by: RelayLimits().identifyTimeout)
        #expect(closeCode(try channel.readOutbound(as: WebSocketFrame.self)) == 4001)
    }

    @Test func sendBeforeIdentifyIsRefusedAndTheSocketStaysOpen() throws {
        let channel = try channel()
        try send(#"{"chat_id":1,"content":"hi","nonce":"n"}"#, to: channel)
        #expect(try nextText(channel) == #"{"op":"ERROR","d":{"message":"send IDENTIFY first","nonce":"n"}}"#)
        #expect(channel.isActive)
    }

    @Test func malformedAndBinaryFramesGetErrors() throws {
        let channel = try channel(userID: 1)
        try send("{", to: channel)
        #expect(try nextText(channel)?.hasPrefix(#"{"op":"ERROR","d":{"message":"malformed JSON"#) == true)
        try send("abc", to: channel, opcode: .binary)
        #expect(try nextText(channel)?.contains("binary frames are not supported") == true)
        #expect(channel.isActive)
    }

    @Test func pingIsAnsweredAndSilentPeersAreDropped() throws {
        let channel = try channel(userID: 1)
        try send("payload", to: channel, opcode: .ping)
        let pong = try channel.readOutbound(as: WebSocketFrame.self)
        #expect(pong?.opcode == .pong)
        #expect(pong.map { String(buffer: $0.unmaskedData) } == "payload")

        let interval = RelayLimits().pingInterval
        channel.embeddedEventLoop.advanceTime(by: interval)
        #expect(try channel.readOutbound(as: WebSocketFrame.self)?.opcode == .ping)
        channel.embeddedEventLoop.advanceTime(by: interval)
        #expect(closeCode(try channel.readOutbound(as: WebSocketFrame.self)) == 4009)
    }

    @Test func clientCloseIsEchoed() throws {
        let channel = try channel(userID: 1)
        var data = ByteBuffer()
        data.write(webSocketErrorCode: .normalClosure)
        try channel.writeInbound(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))
        #expect(closeCode(try channel.readOutbound(as: WebSocketFrame.self)) == 1000)
        #expect(!channel.isActive)
    }
}
