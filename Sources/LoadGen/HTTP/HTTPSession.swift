import NIOCore
import NIOHTTP1
import NIOPosix

/// One keep-alive HTTP/1.1 connection to nginx, reopened when the server closes it.
/// Requests go one after another (callers wait for an answer before the next request);
/// everything happens on the session's event loop.
final class HTTPSession: Sendable {
    let loop: EventLoop
    private let endpoint: Endpoint
    private let index: Int
    private let channel: NIOLoopBoundBox<Channel?>

    init(endpoint: Endpoint, loop: EventLoop, index: Int) {
        self.endpoint = endpoint
        self.loop = loop
        self.index = index
        channel = .makeEmptyBox(valueType: Channel.self, eventLoop: loop)
    }

    /// Sends `call`; fails after `timeout`. With `retryOnClose`, a request whose connection
    /// closed before any answer (a keep-alive race) is sent once more on a new connection —
    /// only for requests that are safe to repeat.
    func request(_ call: HTTPCall, timeout: TimeAmount = .seconds(15), retryOnClose: Bool = true)
        -> EventLoopFuture<HTTPAnswer>
    {
        loop.flatSubmit {
            self.requestOnLoop(call, timeout: timeout).flatMapError { error in
                guard retryOnClose, error is HTTPConnectionClosed else { return self.loop.makeFailedFuture(error) }
                return self.requestOnLoop(call, timeout: timeout)
            }
        }
    }

    /// Closes the connection, if any.
    func close() -> EventLoopFuture<Void> {
        loop.flatSubmit {
            guard let channel = self.channel.value else { return self.loop.makeSucceededVoidFuture() }
            self.channel.value = nil
            return channel.close().recover { _ in }
        }
    }

    private func requestOnLoop(_ call: HTTPCall, timeout: TimeAmount) -> EventLoopFuture<HTTPAnswer> {
        connected().flatMap { channel in
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: self.endpoint.hostHeader)
            headers.add(name: "Accept", value: "application/json")
            if let token = call.token { headers.add(name: "Authorization", value: "Bearer \(token)") }
            var body: ByteBuffer?
            if let bytes = call.body {
                headers.add(name: "Content-Type", value: "application/json")
                headers.add(name: "Content-Length", value: "\(bytes.count)")
                body = channel.allocator.buffer(bytes: bytes)
            }
            let head = HTTPRequestHead(version: .http1_1, method: call.method, uri: call.path, headers: headers)
            let promise = self.loop.makePromise(of: HTTPAnswer.self)
            let timer = self.loop.scheduleTask(in: timeout) { channel.close(promise: nil) }
            promise.futureResult.whenComplete { _ in timer.cancel() }
            channel.writeAndFlush(HTTPOutgoing(head: head, body: body, promise: promise), promise: nil)
            return promise.futureResult
        }
    }

    private func connected() -> EventLoopFuture<Channel> {
        if let channel = channel.value, channel.isActive { return loop.makeSucceededFuture(channel) }
        channel.value = nil
        return endpoint.bootstrap(on: loop, index: index)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(HTTPClientHandler())
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .map { channel in
                self.channel.value = channel
                return channel
            }
    }
}
