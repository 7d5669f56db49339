import NIOCore
import NIOHTTP1

/// Sits behind the upgrade handler until the upgrade succeeds (then it is removed): sees a
/// response only when the server refused the upgrade, and fails the handshake then — or
/// when the connection closes first.
final class UpgradeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    static let name = "loadgen-upgrade-watcher"
    typealias InboundIn = HTTPClientResponsePart

    private let ready: EventLoopPromise<NIOLoopBound<WebSocketClient>>

    init(ready: EventLoopPromise<NIOLoopBound<WebSocketClient>>) {
        self.ready = ready
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            ready.fail(WebSocketDialer.Refused(status: Int(head.status.code)))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        ready.fail(HTTPConnectionClosed())
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        ready.fail(error)
        context.close(promise: nil)
    }
}
