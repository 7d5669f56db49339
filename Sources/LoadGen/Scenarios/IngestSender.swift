import NIOCore

/// One ws-ingest user: sends `{"chat_id":C,"content":"i<seq>","nonce":"n<seq>"}` with at
/// most `window` sends unacknowledged, and times each send → the ACK carrying its nonce.
/// An ACK for no send in flight, or for one already answered, is an error; sends still
/// unanswered after the drain are lost (`finish`).
final class IngestSender: PacedSender {
    private let stats: LoopStats
    private let window: Int
    private let flatOut: Bool
    private let frame: SendFrame
    private var inFlight = InFlightSends()
    private var sending = false

    init(chatID: Int64, window: Int, flatOut: Bool, stats: LoopStats) {
        self.stats = stats
        self.window = window
        self.flatOut = flatOut
        frame = SendFrame(chatID: chatID, tag: "i")
    }

    var outstanding: Int { inFlight.count }

    func start(on socket: WebSocketClient) {
        sending = true
        if flatOut { fill(socket) }
    }

    func stop() {
        sending = false
    }

    /// After the drain: what is still unanswered is lost.
    func finish() {
        stats.lost(inFlight.count)
    }

    func trySend(on socket: WebSocketClient, scheduled: UInt64) -> Bool {
        guard sending, socket.isOpen, inFlight.count < window else { return false }
        send(on: socket, scheduled: scheduled)
        return true
    }

    func received(text: UnsafeRawBufferPointer, on socket: WebSocketClient) {
        let now = monotonicNanos()
        switch ServerFrameScanner.kind(of: text) {
        case .ack:
            guard let sequence = ServerFrameScanner.nonceSequence(in: text) else { return stats.unknown() }
            switch inFlight.answer(sequence) {
            case .matched(let since, let written):
                stats.answered(at: now, after: now &- since, sinceWritten: now &- written)
                if flatOut { fill(socket) }
            case .duplicate: stats.duplicate()
            case .unknown: stats.unknown()
            }
        case .error:
            stats.error()
            if let sequence = ServerFrameScanner.nonceSequence(in: text), case .matched = inFlight.answer(sequence),
               flatOut {
                fill(socket)
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
        while sending, socket.isOpen, inFlight.count < window { send(on: socket, scheduled: monotonicNanos()) }
    }

    private func send(on socket: WebSocketClient, scheduled: UInt64) {
        let now = monotonicNanos()
        let sequence = inFlight.issue(since: scheduled, written: now)
        let buffer = frame.encode(sequence, allocator: socket.allocator)
        stats.sent(at: now)
        socket.send(text: buffer)
    }
}

@available(*, unavailable)
extension IngestSender: Sendable {}
