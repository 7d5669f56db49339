import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Opens one WebSocket through nginx: `GET` the endpoint's WebSocket path (or `path`) with
/// `Authorization: Bearer <token>`, the
/// upgrade done by `NIOHTTPClientUpgradeHandler` + `NIOWebSocketClientUpgrader`.
enum WebSocketDialer {
    /// Refused upgrade: the status nginx or the relay answered instead of 101.
    struct Refused: Error, CustomStringConvertible {
        let status: Int
        var description: String { "upgrade refused with HTTP \(status)" }
    }

    struct TimedOut: Error, CustomStringConvertible {
        var description: String { "no upgrade within the handshake timeout" }
    }

    /// Succeeds with the socket's handler once the server answered 101. `makeBehavior` runs
    /// on `loop`, after the upgrade.
    static func connect(
        endpoint: Endpoint, loop: EventLoop, index: Int, token: String, path: String? = nil,
        timeout: TimeAmount = .seconds(15),
        makeBehavior: @escaping @Sendable () -> any SocketBehavior
    ) -> EventLoopFuture<NIOLoopBound<WebSocketClient>> {
        let ready = loop.makePromise(of: NIOLoopBound<WebSocketClient>.self)
        endpoint.bootstrap(on: loop, index: index)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: 1 << 20, automaticErrorHandling: true) {
                        channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            _ = channel.pipeline.syncOperations.removeHandler(name: UpgradeWatcher.name)
                            let client = WebSocketClient(behavior: makeBehavior())
                            try channel.pipeline.syncOperations.addHandler(client)
                            ready.succeed(NIOLoopBound(client, eventLoop: channel.eventLoop))
                        }
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        leftOverBytesStrategy: .forwardBytes,
                        withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                    try channel.pipeline.syncOperations.addHandler(UpgradeWatcher(ready: ready), name: UpgradeWatcher.name)
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .whenComplete { result in
                switch result {
                case .failure(let error):
                    ready.fail(error)
                case .success(let channel):
                    let timer = loop.scheduleTask(in: timeout) {
                        ready.fail(TimedOut())
                        channel.close(promise: nil)
                    }
                    ready.futureResult.whenComplete { _ in timer.cancel() }
                    var headers = HTTPHeaders()
                    headers.add(name: "Host", value: endpoint.hostHeader)
                    headers.add(name: "Authorization", value: "Bearer \(token)")
                    headers.add(name: "Content-Length", value: "0")
                    let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path ?? endpoint.webSocketPath, headers: headers)
                    channel.write(HTTPClientRequestPart.head(head), promise: nil)
                    channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                }
            }
        return ready.futureResult
    }
}
