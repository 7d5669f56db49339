import Domain
import Foundation
import Logging
import Storage
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Testing
@testable import WSRelay

/// The relay's metrics, `/metrics` and `/healthz` on its socket, and the close bookkeeping.
@Suite struct RelayOperationsTests {
    let tokens = TokenService(secret: Array("0123456789abcdef0123456789abcdef".utf8))
    let registry = ConnectionRegistry()
    let database: TestDatabase
    let export = MetricsExport()
    let relay: RelayContext
    let operations: RelayOperations
    let revokedSessions: RevokedSessions

    init() throws {
        database = try TestDatabase()
        let metrics = RelayMetrics(factory: export.factory)
        let dispatcher = try Dispatcher(store: database.store(), registry: registry, limits: RelayLimits(),
                                        logger: Logger(label: "test"), metrics: metrics)
        revokedSessions = try RevokedSessions(path: database.path)
        relay = RelayContext(registry: registry, dispatcher: dispatcher, tokens: tokens,
                             revokedSessions: revokedSessions, sessions: SessionSockets(), limits: RelayLimits(),
                             logger: Logger(label: "test"), now: { 1_000 }, metrics: metrics)
        operations = RelayOperations(export: export, metrics: metrics, dispatcher: dispatcher, registry: registry,
                                     database: .sqlite(path: database.path), logger: Logger(label: "test"))
    }

    private var rendered: String { String(decoding: export.render(), as: UTF8.self) }

    private func socket() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(handler: WebSocketHandler(relay: relay, identity: nil, acceptedAt: 0, requestID: "r1"))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    @Test func openSocketsRiseAndFallAndAClientCloseIsCountedWithItsCode() throws {
        let channel = try socket()
        #expect(rendered.contains("messenger_ws_open_sockets 1.0\n"))
        #expect(rendered.contains("messenger_ws_connections_total 1\n"))
        var code = ByteBuffer()
        code.write(webSocketErrorCode: .normalClosure)
        try channel.writeInbound(WebSocketFrame(fin: true, opcode: .connectionClose, data: code))
        #expect(try channel.readOutbound(as: WebSocketFrame.self)?.opcode == .connectionClose)  // the echo
        _ = try? channel.finish()
        channel.embeddedEventLoop.run()  // the close the echo's completion started removes the handler
        #expect(rendered.contains("messenger_ws_open_sockets 0.0\n"))
        #expect(rendered.contains(#"messenger_ws_closes_total{code="1000",by="client"} 1"#))
    }

    @Test func aServerCloseIsCountedWithTheCodeTheServerSent() throws {
        let channel = try socket()
        try channel.writeInbound(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: #"{"op":"IDENTIFY","d":{"token":"bad"}}"#)))
        _ = try? channel.finish()
        #expect(rendered.contains(#"messenger_ws_closes_total{code="4501",by="server"} 1"#))
    }

    @Test func aDroppedSocketIs1006() throws {
        let channel = try socket()
        _ = try? channel.finish()
        #expect(rendered.contains(#"messenger_ws_closes_total{code="1006",by="none"} 1"#))
    }

    @Test func healthzOnTheRelaySocketAnswersFromTheEventLoop() throws {
        let authenticator = UpgradeAuthenticator(tokens: tokens, revokedSessions: revokedSessions, now: { 1_000 })
        let channel = EmbeddedChannel(handler: HTTPRefusalHandler(authenticator: authenticator, operations: operations,
                                                                  logger: Logger(label: "test")))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        var headers = HTTPHeaders()
        headers.add(name: "X-Request-Id", value: "abc")
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET,
                                                                            uri: "/healthz", headers: headers)))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        guard case .head(let head) = try #require(try channel.readOutbound(as: HTTPServerResponsePart.self)) else {
            Issue.record("no response head")
            return
        }
        #expect(head.status == .ok)
        guard case .body(.byteBuffer(let body)) = try #require(try channel.readOutbound(as: HTTPServerResponsePart.self)) else {
            Issue.record("no response body")
            return
        }
        #expect(String(buffer: body) == #"{"status":"ok"}"#)
        _ = try? channel.finish()
    }

    @Test func metricsCarryTheStreamPositionsReadAtScrapeTime() throws {
        let store = try database.store()
        let alice = try store.login(username: "alice")
        _ = try store.createGroup(creatorID: alice.id, name: "g", participants: [])
        let head = try store.latestSeq()
        #expect(head > 0)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let answer = try operations.answer(.metrics, on: group.next()).wait()
        let text = String(decoding: answer.body, as: UTF8.self)
        #expect(answer.status == .ok)
        #expect(answer.contentType.hasPrefix("text/plain; version=0.0.4"))
        // The dispatcher was made before the writes and has not run a round: it lags by all of them.
        #expect(text.contains("messenger_event_head_seq \(Double(head))\n"))
        #expect(text.contains("messenger_ws_event_lag \(Double(head))\n"))
        #expect(text.contains("messenger_ws_registered_sockets 0.0\n"))
        #expect(text.contains("# TYPE messenger_db_commit_duration_seconds histogram\n"))
        operations.shutdown()
    }

    @Test func requestIDsAreNginxsOrNothing() {
        var headers = HTTPHeaders()
        headers.add(name: "X-Request-Id", value: "0f1e2d3c4b5a69788796a5b4c3d2e1f0")
        #expect(RelayOperations.requestID(headers) == "0f1e2d3c4b5a69788796a5b4c3d2e1f0")
        headers.replaceOrAdd(name: "X-Request-Id", value: "a b\nforged=1")
        #expect(RelayOperations.requestID(headers) == "-")
        #expect(RelayOperations.requestID(HTTPHeaders()) == "-")
    }
}
