import NIOCore

/// One ws-ingest user: sends `{"chat_id":C,"content":"i<seq>","nonce":"n<seq>"}` with at
/// most `window` sends unacknowledged, and times each send → ACK.
final class IngestSender: PacedSender {
    private let stats: LoopStats
    private let window: Int
    private let flatOut: Bool
    private let frame: SendFrame
    private var sentAt: [UInt64]
    private let ringMask: Int
    private var nextSequence: UInt64 = 0
    private(set) var outstanding = 0
    private var sending = false

    init(chatID: Int64, window: Int, flatOut: Bool, stats: LoopStats) {
        self.stats = stats
        self.window = window
        self.flatOut = flatOut
        frame = SendFrame(chatID: chatID, tag: "i")
        var size = 1
        while size < window { size <<= 1 }
        sentAt = [UInt64](repeating: 0, count: size)
        ringMask = size - 1
    }

    func start(on socket: WebSocketClient) {
        sending = true
        if flatOut { fill(socket) }
    }

    func stop() {
        sending = false
    }

    func trySend(on socket: WebSocketClient) -> Bool {
        guard sending, socket.isOpen, outstanding < window else { return false }
        send(on: socket)
        return true
    }

    func received(text: UnsafeRawBufferPointer, on socket: WebSocketClient) {
        let now = monotonicNanos()
        switch ServerFrameScanner.kind(of: text) {
        case .ack:
            guard let sequence = ServerFrameScanner.nonceSequence(in: text), outstanding > 0 else {
                return stats.error()
            }
            outstanding -= 1
            stats.answered(at: now, after: now &- sentAt[Int(truncatingIfNeeded: sequence) & ringMask])
            if flatOut { fill(socket) }
        case .error:
            stats.error()
            if ServerFrameScanner.nonceSequence(in: text) != nil, outstanding > 0 {
                outstanding -= 1
                if flatOut { fill(socket) }
            }
        case .message:
            stats.delivered(at: now)
        case .other:
            break
        }
    }

    func closed(_ socket: WebSocketClient) {
        if sending { stats.error() }
        sending = false
    }

    private func fill(_ socket: WebSocketClient) {
        while sending, socket.isOpen, outstanding < window { send(on: socket) }
    }

    private func send(on socket: WebSocketClient) {
        let sequence = nextSequence
        nextSequence += 1
        let buffer = frame.encode(sequence, allocator: socket.allocator)
        let now = monotonicNanos()
        sentAt[Int(truncatingIfNeeded: sequence) & ringMask] = now
        outstanding += 1
        stats.sent(at: now)
        socket.send(text: buffer)
    }
}

@available(*, unavailable)
extension IngestSender: Sendable {}
