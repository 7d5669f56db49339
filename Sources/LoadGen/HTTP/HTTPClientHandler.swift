import NIOCore
import NIOHTTP1

/// Pairs pipelined requests with their responses on one keep-alive connection, and closes
/// the connection when the server says it will not keep it (nginx's `keepalive_requests`).
final class HTTPClientHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPOutgoing
    typealias OutboundOut = HTTPClientRequestPart

    private var waiting = CircularBuffer<(promise: EventLoopPromise<HTTPAnswer>, sentAt: UInt64)>()
    private var status = 0
    private var keepAlive = true
    private var body: ByteBuffer?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let outgoing = unwrapOutboundIn(data)
        waiting.append((outgoing.promise, monotonicNanos()))
        context.write(wrapOutboundOut(.head(outgoing.head)), promise: nil)
        if let body = outgoing.body {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            keepAlive = head.isKeepAlive
            body = nil
        case .body(var part):
            if body == nil {
                body = part
            } else {
                body!.writeBuffer(&part)
            }
        case .end:
            guard let (promise, sentAt) = waiting.popFirst() else {
                context.close(promise: nil)
                return
            }
            let answer = HTTPAnswer(status: status, body: body ?? context.channel.allocator.buffer(capacity: 0),
                                    nanos: monotonicNanos() &- sentAt)
            body = nil
            if !keepAlive { context.close(promise: nil) }
            promise.succeed(answer)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(HTTPConnectionClosed())
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        while let (promise, _) = waiting.popFirst() { promise.fail(error) }
    }
}
