import NIOCore

/// One member socket of the ws-fanout group. Every member checks that its copies come in
/// order and once (`MemberSequence`) and reports each new one to the shared tracker; a gap
/// or a duplicate is counted, never taken for another socket's copy. The sender's also sends `{"chat_id":G,"content":"f<seq>","nonce":"n<seq>"}`,
/// keeping at most `window` messages not yet delivered to every member.
final class FanoutMember: PacedSender {
    private let tracker: FanoutTracker
    private let isSender: Bool
    private let window: Int
    private let flatOut: Bool
    private let frame: SendFrame
    private var nextSequence: UInt64 = 0
    private var seen = MemberSequence()
    private var sending = false
    /// Between start and stop: a socket closing then is an error.
    private var active = false
    /// Wakes the sender (on its loop) when a delivery elsewhere freed a window slot.
    var wakeSender: (@Sendable () -> Void)?

    init(chatID: Int64, isSender: Bool, window: Int, flatOut: Bool, tracker: FanoutTracker) {
        self.tracker = tracker
        self.isSender = isSender
        self.window = window
        self.flatOut = flatOut
        frame = SendFrame(chatID: chatID, tag: "f")
    }

    func start(on socket: WebSocketClient) {
        active = true
        guard isSender else { return }
        sending = true
        fill(socket)
    }

    func stop() {
        active = false
        sending = false
    }

    /// Flat out: sends until the window is full.
    func fill(_ socket: WebSocketClient) {
        guard flatOut else { return }
        while sending, socket.isOpen, tracker.outstanding < window { send(on: socket, scheduled: monotonicNanos()) }
    }

    func trySend(on socket: WebSocketClient, scheduled: UInt64) -> Bool {
        guard sending, socket.isOpen, tracker.outstanding < window else { return false }
        send(on: socket, scheduled: scheduled)
        return true
    }

    func received(text: UnsafeRawBufferPointer, on socket: WebSocketClient) {
        switch ServerFrameScanner.kind(of: text) {
        case .message:
            guard let sequence = ServerFrameScanner.contentSequence(in: text) else { return tracker.unknown() }
            switch seen.received(sequence) {
            case .next: break
            case .gap(let missed): tracker.gap(missed)
            case .duplicate: return tracker.duplicate()
            }
            if tracker.delivered(sequence, at: monotonicNanos()) {
                if isSender { fill(socket) } else { wakeSender?() }
            }
        case .error:
            if let sequence = ServerFrameScanner.nonceSequence(in: text) {
                tracker.refused(sequence)
                if isSender { fill(socket) }
            } else {
                tracker.error()
            }
        case .ack, .other:
            break
        }
    }

    func closed(_ socket: WebSocketClient) {
        if active { tracker.error() }
        stop()
    }

    private func send(on socket: WebSocketClient, scheduled: UInt64) {
        let sequence = nextSequence
        nextSequence += 1
        let buffer = frame.encode(sequence, allocator: socket.allocator)
        tracker.sent(sequence, at: monotonicNanos(), since: scheduled)
        socket.send(text: buffer)
    }
}

@available(*, unavailable)
extension FanoutMember: Sendable {}
