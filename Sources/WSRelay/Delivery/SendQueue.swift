import Domain
import Foundation
import Storage

/// A send received on a socket, waiting for the storage thread.
struct PendingSend: Sendable {
    enum Target: Sendable, Equatable {
        case chat(Int64)
        /// Seed 001: the direct chat with this user, created if needed.
        case user(String)
    }

    let sender: ConnectionHandle
    let senderID: Int64
    let target: Target
    let draft: MessageDraft
    /// When the socket handed it over: its round waits for a locked database no longer than
    /// the busy timeout from here.
    let queuedAt = ContinuousClock.now
}

/// A connection to register, and where its stream starts.
struct Join: Sendable {
    enum Start: Sendable, Equatable {
        /// Right after this seq, with no READY: the handshake cursor of a protocol-1 socket.
        case handshake(Int64)
        /// Protocol 2: READY first, then every event after this seq (the handshake cursor,
        /// or the client's `since`).
        case ready(after: Int64, resuming: Bool)
    }

    let handle: ConnectionHandle
    let userID: Int64
    let version: ProtocolVersion
    let start: Start
}

/// Something a socket asks of the storage thread that is not a send.
enum Signal: Sendable {
    /// Protocol 2's READ op.
    case read(sender: ConnectionHandle, userID: Int64, chatID: Int64, messageID: Int64)
    /// Protocol 2's TYPING op.
    case typing(sender: ConnectionHandle, userID: Int64, chatID: Int64)
    /// A connection of this user closed: they may have gone offline.
    case disconnected(userID: Int64)
    /// Another relay forwarded this member's TYPING.
    case peerTyping(userID: Int64, chatID: Int64)
    /// Another relay recorded a change of this user's presence.
    case peerPresence(userID: Int64)

    var isRead: Bool {
        if case .read = self { return true }
        return false
    }
}

/// What the event loops hand the storage thread — sends, joins, wake-ups — and the rules for
/// when a round starts. Every member is guarded by one condition; `next` is the storage
/// thread's only way in.
final class SendQueue: @unchecked Sendable {
    // @unchecked: every stored property is guarded by `condition`.
    private let condition = NSCondition()
    private var pending: [PendingSend] = []
    private var joins: [Join] = []
    private var signals: [Signal] = []
    private var wakeRequested = false
    private var stopping = false
    private var lastRound: TimeInterval = 0

    private let limits: RelayLimits
    /// How often the database is checked for events nobody notified us about.
    private let pollInterval: TimeInterval

    /// The least time between two rounds started by notifications alone. FCGIApp sends one
    /// per burst of commits; under 10,000 REST writes a second, a round per notification cost
    /// the relay a third of a core re-reading the newest rows. Sends and joins never wait for it.
    static let notificationRoundInterval: TimeInterval = 0.002
    /// The least time between the starts of two rounds that commit sends. A send arriving
    /// long after the last round goes at once; one arriving sooner waits for the rest of the
    /// interval and shares the round (one transaction, one wake-up per event loop). Under a
    /// steady 10,000 sends a second this took the p99 send → ACK from 18–50 to 20–30 ms
    /// (eight runs each, alternating builds) for about 1 ms more at the median and 0.03 cores
    /// less. Flat out, rounds last longer than this anyway. Joins never wait for it.
    static let sendRoundInterval: TimeInterval = 0.001

    init(limits: RelayLimits, pollInterval: TimeInterval) {
        self.limits = limits
        self.pollInterval = pollInterval
    }

    /// Queues a send; `false` when the queue is full (or stopping) and the client should retry.
    func submit(_ send: PendingSend) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping, pending.count < limits.maxPendingSends else { return false }
        pending.append(send)
        // Only the first send wakes the thread: later ones join the round it is waiting for.
        if pending.count == 1 { condition.signal() }
        return true
    }

    func join(_ join: Join) {
        condition.lock()
        joins.append(join)
        condition.signal()
        condition.unlock()
    }

    /// Queues a READ, TYPING or disconnection; it is handled in the next round.
    func signal(_ signal: Signal) {
        condition.lock()
        signals.append(signal)
        condition.signal()
        condition.unlock()
    }

    /// Asks for a catch-up read soon: at once, or `notificationRoundInterval` after the
    /// previous round.
    func wake() {
        condition.lock()
        if !wakeRequested {
            wakeRequested = true
            condition.signal()
        }
        condition.unlock()
    }

    /// Makes `next` hand out what is left, then report the end.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    /// One round's work.
    struct Round {
        let sends: [PendingSend]
        let joins: [Join]
        let signals: [Signal]
        /// The queue was stopped and this round empties it: the last one.
        let isLast: Bool
    }

    /// Waits until a round is due — a send, a join, a notification, or the poll — and takes
    /// its work. Storage thread only.
    func next() -> Round {
        condition.lock()
        defer { condition.unlock() }
        while pending.isEmpty && joins.isEmpty && signals.isEmpty && !stopping {
            if wakeRequested {
                let due = lastRound + Self.notificationRoundInterval
                let now = ProcessInfo.processInfo.systemUptime
                if now >= due { break }
                _ = condition.wait(until: Date(timeIntervalSinceNow: due - now))
            } else if !condition.wait(until: Date(timeIntervalSinceNow: pollInterval)) {
                break  // the poll: look for events nobody told us about
            }
        }
        while !pending.isEmpty && pending.count < limits.maxBatch && joins.isEmpty && signals.isEmpty && !stopping {
            let due = lastRound + Self.sendRoundInterval
            let now = ProcessInfo.processInfo.systemUptime
            if now >= due { break }
            _ = condition.wait(until: Date(timeIntervalSinceNow: due - now))
        }
        let sends = Array(pending.prefix(limits.maxBatch))
        pending.removeFirst(sends.count)
        let joining = joins
        joins.removeAll()
        let signalled = signals
        signals.removeAll()
        wakeRequested = false
        lastRound = ProcessInfo.processInfo.systemUptime
        return Round(sends: sends, joins: joining, signals: signalled, isLast: stopping && pending.isEmpty)
    }
}
