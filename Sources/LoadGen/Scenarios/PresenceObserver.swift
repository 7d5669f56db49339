/// A protocol-2 socket that stays connected through a presence storm and counts the
/// PRESENCE frames it gets: per user in the measured window (the relay sends at most one
/// per user per 5 s), and which users it heard of at all.
final class PresenceObserver: SocketBehavior {
    private let window: MeasureWindow
    private(set) var inWindow: [UInt64: Int] = [:]
    private(set) var heardOf: Set<UInt64> = []
    private(set) var errors = 0
    /// Between start and stop: a socket closing then is an error.
    private var active = true

    init(window: MeasureWindow) {
        self.window = window
    }

    func stop() { active = false }

    func received(text: UnsafeRawBufferPointer, on socket: WebSocketClient) {
        if ServerFrameScanner.isOp(.presence, text) {
            guard let user = ServerFrameScanner.userID(in: text) else { errors += 1; return }
            heardOf.insert(user)
            if window.contains(monotonicNanos()) { inWindow[user, default: 0] += 1 }
        } else if ServerFrameScanner.kind(of: text) == .error {
            errors += 1
        }
    }

    func closed(_ socket: WebSocketClient) {
        if active { errors += 1 }
    }
}

@available(*, unavailable)
extension PresenceObserver: Sendable {}
