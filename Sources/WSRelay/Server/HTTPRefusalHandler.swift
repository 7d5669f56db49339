import Domain
import Logging
import NIOCore
import NIOHTTP1

/// Answers every HTTP request that was not upgraded: `GET /metrics` and `GET /healthz`
/// (`RelayOperations`), else 401 for a bad token, 404 off `/ws`, 400 for a plain GET without
/// the WebSocket upgrade headers — those always `{"error": …}`. One log line per request.
final class HTTPRefusalHandler: ChannelInboundHandler, RemovableChannelHandler {
    static let name = "http-refusal"

    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let authenticator: UpgradeAuthenticator
    private let operations: RelayOperations?
    private let logger: Logger
    private var refusal: (HTTPResponseStatus, String)?
    private var endpoint: RelayOperations.Endpoint?
    private var requestID = "-"
    private var method = HTTPMethod.GET
    private var route = "unmatched"
    private var startedAt: UInt64 = 0

    init(authenticator: UpgradeAuthenticator, operations: RelayOperations?, logger: Logger) {
        self.authenticator = authenticator
        self.operations = operations
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            startedAt = Elapsed.now()
            requestID = RelayOperations.requestID(head.headers)
            method = head.method
            let path = UpgradeAuthenticator.split(head.uri).path
            refusal = nil
            endpoint = nil
            if operations != nil, head.method == .GET || head.method == .HEAD,
               let found = RelayOperations.Endpoint(path: path) {
                endpoint = found
                route = path
                return
            }
            route = path == "/ws" ? "/ws" : "unmatched"
            switch authenticator.decide(head) {
            case .refuse(let status, let message): refusal = (status, message)
            case .upgrade: refusal = (.badRequest, "expected a WebSocket upgrade request")
            }
        case .body:
            break
        case .end:
            if let endpoint, let operations {
                let channel = context.channel
                let this = NIOLoopBound(self, eventLoop: context.eventLoop)
                let contextBox = NIOLoopBound(context, eventLoop: context.eventLoop)
                operations.answer(endpoint, on: context.eventLoop).whenComplete { result in
                    guard channel.isActive else { return }
                    switch result {
                    case .success(let answer):
                        this.value.respond(context: contextBox.value, status: answer.status,
                                           contentType: answer.contentType, body: answer.body)
                    case .failure:
                        this.value.respond(context: contextBox.value, status: .serviceUnavailable,
                                           contentType: "application/json; charset=utf-8",
                                           body: Array(#"{"error":"shutting down"}"#.utf8))
                    }
                }
                return
            }
            let (status, message) = refusal ?? (.badRequest, "bad request")
            var writer = JSONWriter()
            writer.object { $0.field("error", message) }
            respond(context: context, status: status, contentType: "application/json; charset=utf-8", body: writer.bytes)
        }
    }

    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, contentType: String, body: [UInt8]) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: "\(body.count)")
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
                      promise: nil)
        if method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        // One line per request, like FCGIApp's: the route, never the query (it may hold a token).
        logger.info("request", metadata: [
            "request_id": "\(requestID)", "method": "\(method.rawValue)", "route": "\(route)",
            "status": "\(status.code)", "duration_ms": "\(Elapsed.milliseconds(Elapsed.now() &- startedAt))",
        ])
    }
}
