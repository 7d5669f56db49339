import NIOCore

/// One ws-read reader (protocol 2): sends `{"op":"READ","d":{"chat_id":G,"message_id":M}}`
/// for the group's messages in id order, so every READ moves its marker forward and is
/// stored with a READ event to every member, its own socket included. Read `k` is message
/// `messageIDs[k]`; the reader's own READ event with `last_read_id` = that id answers it
/// (`InFlightSends`), at most `window` unanswered. Other readers' READ events are counted
/// as deliveries (the receipts). A reader that reaches the last message stops and says so.
final class ReadSender: SocketBehavior {
    private let stats: LoopStats
    private let userID: UInt64
    private let window: Int
    private let head: [UInt8]
    private let messageIDs: [UInt64]
    /// Message id → its index in `messageIDs`.
    private let readIndex: [UInt64: UInt64]
    private var inFlight = InFlightSends()
    private var sending = false
    private(set) var exhausted = false

    init(chatID: Int64, userID: Int64, window: Int, messageIDs: [UInt64], readIndex: [UInt64: UInt64],
         stats: LoopStats) {
        self.stats = stats
        self.userID = UInt64(userID)
        self.window = window
        self.messageIDs = messageIDs
        self.readIndex = readIndex
        head = Array(#"{"op":"READ","d":{"chat_id":\#(chatID),"message_id":"#.utf8)
    }

    var outstanding: Int { inFlight.count }

    func start(on socket: WebSocketClient) {
        sending = true
        fill(socket)
    }

    func stop() { sending = false }

    /// After the drain: what is still unanswered is lost.
    func finish() { stats.lost(inFlight.count) }

    func received(text: UnsafeRawBufferPointer, on socket: WebSocketClient) {
        let now = monotonicNanos()
        guard ServerFrameScanner.isOp(.read, text) else {
            if ServerFrameScanner.kind(of: text) == .error { stats.error() }
            return
        }
        guard let user = ServerFrameScanner.userID(in: text), let marker = ServerFrameScanner.lastReadID(in: text)
        else { return stats.unknown() }
        guard user == userID else { return stats.delivered(at: now) }
        guard let index = readIndex[marker] else { return stats.unknown() }
        switch inFlight.answer(index) {
        case .matched(let since, _):
            stats.answered(at: now, after: now &- since)
            fill(socket)
        case .duplicate: stats.duplicate()
        case .unknown: stats.unknown()
        }
    }

    func closed(_ socket: WebSocketClient) {
        if sending { stats.error() }
        sending = false
    }

    private func fill(_ socket: WebSocketClient) {
        while sending, socket.isOpen, inFlight.count < window {
            guard inFlight.issued < UInt64(messageIDs.count) else {
                exhausted = true
                return
            }
            let now = monotonicNanos()
            let index = inFlight.issue(since: now)
            var buffer = socket.allocator.buffer(capacity: head.count + 24)
            buffer.writeBytes(head)
            buffer.writeDecimal(messageIDs[Int(index)])
            buffer.writeStaticString("}}")
            stats.sent(at: now)
            socket.send(text: buffer)
        }
    }
}

@available(*, unavailable)
extension ReadSender: Sendable {}
