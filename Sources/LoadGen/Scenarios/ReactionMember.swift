import NIOCore

/// One member socket of the ws-reactions group (protocol 2). Each reactor's changes to the
/// hot message alternate added, removed, added, … (it PUTs, then DELETEs, its own emoji, one
/// change in flight), so a member's `n`-th REACTION from a reactor is that reactor's change
/// `n` and must say `added` for even `n`: one out of step means this socket missed a change.
/// A frame whose seq is not above the last one is a duplicate. Change `n` of lane `l` is
/// sequence `n × lanes + l` in the shared `FanoutTracker`.
final class ReactionMember: SocketBehavior {
    private let tracker: FanoutTracker
    /// Reactor user id → lane.
    private let lanes: [UInt64: Int]
    private var changes: [UInt64]
    private var lastSeq: UInt64 = 0
    /// Between start and stop: a socket closing then is an error.
    private var active = false
    /// A lane's change has reached every member: its reactor may send the next.
    private let completed: @Sendable (Int) -> Void

    init(tracker: FanoutTracker, lanes: [UInt64: Int], completed: @escaping @Sendable (Int) -> Void) {
        self.tracker = tracker
        self.lanes = lanes
        self.completed = completed
        changes = [UInt64](repeating: 0, count: lanes.count)
    }

    func start() { active = true }

    func stop() { active = false }

    func received(text: UnsafeRawBufferPointer, on socket: WebSocketClient) {
        guard ServerFrameScanner.isOp(.reaction, text) else {
            if ServerFrameScanner.kind(of: text) == .error { tracker.error() }
            return  // READY, and nothing else is sent to the group during the run
        }
        guard let seq = ServerFrameScanner.seq(in: text), let user = ServerFrameScanner.userID(in: text),
              let lane = lanes[user]
        else { return tracker.unknown() }
        guard seq > lastSeq else { return tracker.duplicate() }
        lastSeq = seq
        var change = changes[lane]
        if ServerFrameScanner.added(in: text) != change.isMultiple(of: 2) {
            tracker.gap(1)
            change += 1
        }
        changes[lane] = change + 1
        if tracker.delivered(change * UInt64(lanes.count) + UInt64(lane), at: monotonicNanos()) { completed(lane) }
    }

    func closed(_ socket: WebSocketClient) {
        if active { tracker.error() }
        active = false
    }
}

@available(*, unavailable)
extension ReactionMember: Sendable {}
