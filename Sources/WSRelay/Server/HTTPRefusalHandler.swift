import Domain
import NIOCore
import NIOHTTP1

/// Answers every HTTP request that was not upgraded: 401 for a bad token, 404 off `/ws`,
/// 400 for a plain GET without the WebSocket upgrade headers. Always `{"error": …}`.
final class HTTPRefusalHandler: ChannelInboundHandler, RemovableChannelHandler {
    static let name = "http-refusal"

    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let authenticator: UpgradeAuthenticator
    private var refusal: (HTTPResponseStatus, String)?

    init(authenticator: UpgradeAuthenticator) {
        self.authenticator = authenticator
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            switch authenticator.decide(head) {
            case .refuse(let status, let message): refusal = (status, message)
            case .upgrade: refusal = (.badRequest, "expected a WebSocket upgrade request")
            }
        case .body:
            break
        case .end:
            let (status, message) = refusal ?? (.badRequest, "bad request")
            var writer = JSONWriter()
            writer.object { $0.field("error", message) }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
            headers.add(name: "Content-Length", value: "\(writer.bytes.count)")
            headers.add(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
                          promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: writer.bytes)))),
                          promise: nil)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
