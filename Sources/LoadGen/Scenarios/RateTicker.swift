import NIOCore

/// Spreads `rate` sends per second over the sockets of one event loop, round-robin, in
/// 2 ms ticks. A send the window does not allow (the next few sockets tried are all
/// waiting for answers) is counted as skipped, not queued, so a server that falls behind
/// shows up as a lower achieved rate.
final class RateTicker {
    private let senders: [(socket: WebSocketClient, sender: any PacedSender)]
    private let rate: Double
    private let skipped: (_ count: Int, _ at: UInt64) -> Void
    private var task: RepeatedTask?
    private var started: UInt64 = 0
    private var issued = 0
    private var cursor = 0

    init(senders: [(socket: WebSocketClient, sender: any PacedSender)], rate: Double,
         skipped: @escaping (_ count: Int, _ at: UInt64) -> Void) {
        self.senders = senders
        self.rate = rate
        self.skipped = skipped
    }

    func start(on loop: EventLoop) {
        guard !senders.isEmpty, rate > 0 else { return }
        started = monotonicNanos()
        let this = NIOLoopBound(self, eventLoop: loop)
        task = loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(2)) { _ in this.value.tick() }
    }

    func stop() {
        task?.cancel()
        task = nil
    }

    private func tick() {
        let now = monotonicNanos()
        let due = Int(rate * Double(now - started) / 1e9) - issued
        guard due > 0 else { return }
        issued += due
        // After a stall, catch up by at most 50 ms worth of sends; the rest is skipped.
        let burst = min(due, max(1, Int(rate * 0.05)))
        var missed = due - burst
        for _ in 0..<burst {
            var sent = false
            for _ in 0..<min(senders.count, 4) {
                let (socket, sender) = senders[cursor]
                cursor = (cursor + 1) % senders.count
                if sender.trySend(on: socket) {
                    sent = true
                    break
                }
            }
            if !sent { missed += 1 }
        }
        if missed > 0 { skipped(missed, now) }
    }
}

@available(*, unavailable)
extension RateTicker: Sendable {}
