import NIOCore

/// Spreads `rate` sends per second over the sockets of one event loop, round-robin, in
/// 2 ms ticks. Each send has a scheduled time (`started + k / rate`) and its latency counts
/// from then, not from when it went out: a send the windows do not allow yet waits in a
/// backlog and goes out at the next tick that finds a free socket, so a server that stalls
/// shows up in the latency histogram instead of being left out of it (coordinated omission).
/// Only what stays in the backlog longer than `backlogSeconds`, or is left in it when the
/// load stops, is counted as skipped.
final class RateTicker {
    private let senders: [(socket: WebSocketClient, sender: any PacedSender)]
    private let rate: Double
    private let skipped: (_ count: Int, _ at: UInt64) -> Void
    private let backlogLimit: Int
    private var backlog = CircularBuffer<UInt64>()
    private var task: RepeatedTask?
    private var started: UInt64 = 0
    private var issued = 0
    private var cursor = 0

    /// `skipped` gets sends that never went out, with their scheduled time.
    init(senders: [(socket: WebSocketClient, sender: any PacedSender)], rate: Double, backlogSeconds: Double = 1,
         skipped: @escaping (_ count: Int, _ at: UInt64) -> Void) {
        self.senders = senders
        self.rate = rate
        self.skipped = skipped
        backlogLimit = max(1, Int(rate * backlogSeconds))
    }

    func start(on loop: EventLoop) {
        guard !senders.isEmpty, rate > 0 else { return }
        started = monotonicNanos()
        let this = NIOLoopBound(self, eventLoop: loop)
        task = loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(2)) { _ in this.value.tick() }
    }

    /// Stops the schedule; sends still waiting in the backlog never go out and are skipped.
    func stop() {
        task?.cancel()
        task = nil
        drop(backlog.count)
    }

    private func tick() {
        let now = monotonicNanos()
        let due = Int(rate * Double(now - started) / 1e9) - issued
        for index in 0..<max(0, due) {
            backlog.append(started + UInt64((Double(issued + index) * 1e9 / rate).rounded()))
        }
        issued += max(0, due)
        while let scheduled = backlog.first, send(scheduled) { backlog.removeFirst() }
        if backlog.count > backlogLimit { drop(backlog.count - backlogLimit) }
    }

    /// Sends at the next socket with room, trying each at most once; false if none had any.
    private func send(_ scheduled: UInt64) -> Bool {
        for _ in 0..<senders.count {
            let (socket, sender) = senders[cursor]
            cursor = (cursor + 1) % senders.count
            if sender.trySend(on: socket, scheduled: scheduled) { return true }
        }
        return false
    }

    private func drop(_ count: Int) {
        for _ in 0..<count {
            guard let scheduled = backlog.popFirst() else { return }
            skipped(1, scheduled)
        }
    }
}

@available(*, unavailable)
extension RateTicker: Sendable {}
