import NIOCore

/// One member of a presence storm: opens a protocol-2 socket, closes it as soon as READY
/// says the relay has registered it (the user is online), and when it is gone (offline)
/// opens the next, until `stop`. A cycle is connect → closed; a refused or failed
/// handshake is an error, and the next try waits 100 ms. Lives on its loop.
final class PresenceFlapper {
    private let endpoint: Endpoint
    private let loop: EventLoop
    private let index: Int
    private let token: String
    private let stats: LoopStats
    private var stopped = false
    private var cycling = false

    init(endpoint: Endpoint, loop: EventLoop, index: Int, token: String, stats: LoopStats) {
        self.endpoint = endpoint
        self.loop = loop
        self.index = index
        self.token = token
        self.stats = stats
    }

    /// Whether a cycle is under way (the scenario waits for the last ones after `stop`).
    var isCycling: Bool { cycling }

    func start() { cycle() }

    func stop() { stopped = true }

    private func cycle() {
        guard !stopped else { return }
        cycling = true
        let started = monotonicNanos()
        stats.sent(at: started)
        let this = NIOLoopBound(self, eventLoop: loop)
        WebSocketDialer.connect(endpoint: endpoint, loop: loop, index: index, token: token) {
            FlappingSocket { this.value.cycled(since: started) }
        }.whenFailure { _ in this.value.failed() }
    }

    private func failed() {
        stats.error()
        cycling = false
        let this = NIOLoopBound(self, eventLoop: loop)
        loop.scheduleTask(in: .milliseconds(100)) { this.value.cycle() }
    }

    private func cycled(since started: UInt64) {
        let now = monotonicNanos()
        stats.answered(at: now, after: now &- started)
        cycling = false
        cycle()
    }
}

@available(*, unavailable)
extension PresenceFlapper: Sendable {}

/// The socket of one cycle: on READY it sends its close frame and drops the connection at
/// once, as a flapping mobile link does (waiting for the relay's answer to the close, the
/// cycle took ~3 s: the client's close timeout), and reports when it is gone.
private final class FlappingSocket: SocketBehavior {
    private let gone: () -> Void

    init(gone: @escaping () -> Void) {
        self.gone = gone
    }

    func received(text: UnsafeRawBufferPointer, on socket: WebSocketClient) {
        if ServerFrameScanner.isOp(.ready, text) { socket.close(timeout: .zero) }
    }

    func closed(_ socket: WebSocketClient) { gone() }
}
