import NIOConcurrencyHelpers

/// The messages of a ws-fan-out run in flight: when each was sent (or scheduled to be, with
/// a rate) and how many member sockets still have to receive it; a member reports only a
/// copy new to it (`MemberSequence`), so one socket's duplicate cannot stand in for
/// another's missing copy. Deliveries arrive on every event loop, so it sits
/// behind one lock; it is touched once per delivery (~100,000 times/s), which a
/// pthread mutex takes in its stride next to the frame decoding around it.
final class FanoutTracker: Sendable {
    private struct Slot {
        var sequence: UInt64 = .max
        var sentAt: UInt64 = 0
        var remaining: Int32 = 0
    }

    private struct State {
        var slots: [Slot]
        var outstanding = 0
        var expected: Int32 = 0
        var window = MeasureWindow.never
        var tally = Tally()
    }

    private let state: NIOLockedValueBox<State>
    private let size: UInt64

    /// Room for `window` messages in flight (with headroom for stragglers). `lanes`: senders
    /// whose sequences interleave as `k × lanes + lane` (ws-reactions, one change in flight
    /// per reactor); the ring is a multiple of it, so two lanes never share a slot.
    init(window: Int, lanes: Int = 1) {
        var size = 1024
        while size < window * 4 { size <<= 1 }
        size *= max(1, lanes)
        self.size = UInt64(size)
        state = NIOLockedValueBox(State(slots: [Slot](repeating: Slot(), count: size)))
    }

    @inline(__always)
    private func slot(_ sequence: UInt64) -> Int { Int(sequence % size) }

    /// Starts measuring; every message must reach `expected` sockets.
    func start(window: MeasureWindow, expected: Int) {
        state.withLockedValue {
            $0.window = window
            $0.expected = Int32(expected)
        }
    }

    var outstanding: Int { state.withLockedValue { $0.outstanding } }

    var tally: Tally { state.withLockedValue { $0.tally } }

    /// `sequence` went out at `now`; its latency counts from `scheduled` (`now` flat out).
    func sent(_ sequence: UInt64, at now: UInt64, since scheduled: UInt64) {
        state.withLockedValue { state in
            let index = slot(sequence)
            if state.slots[index].remaining > 0 {
                // A slot still waiting after the ring came round: that message is lost.
                state.outstanding -= 1
                state.tally.lost += 1
            }
            state.slots[index] = Slot(sequence: sequence, sentAt: scheduled, remaining: state.expected)
            state.outstanding += 1
            if state.window.contains(now) { state.tally.sent += 1 }
        }
    }

    /// One member's copy arrived; true when it was the last one (a window slot is free).
    func delivered(_ sequence: UInt64, at now: UInt64) -> Bool {
        state.withLockedValue { state in
            let index = slot(sequence)
            guard state.slots[index].sequence == sequence, state.slots[index].remaining > 0 else { return false }
            state.slots[index].remaining -= 1
            let nanos = now &- state.slots[index].sentAt
            let measured = state.window.contains(now)
            if measured {
                state.tally.delivered += 1
                state.tally.deliveryLatency.record(Tally.micros(nanos))
            }
            guard state.slots[index].remaining == 0 else { return false }
            state.outstanding -= 1
            if measured {
                state.tally.answered += 1
                state.tally.latency.record(Tally.micros(nanos))
            }
            return true
        }
    }

    /// The server refused the send (an ERROR frame with its nonce).
    func refused(_ sequence: UInt64) {
        state.withLockedValue { state in
            state.tally.errors += 1
            let index = slot(sequence)
            guard state.slots[index].sequence == sequence, state.slots[index].remaining > 0 else { return }
            state.slots[index].remaining = 0
            state.outstanding -= 1
        }
    }

    func error() {
        state.withLockedValue { $0.tally.errors += 1 }
    }

    /// A member saw a message after `missed` it never got.
    func gap(_ missed: UInt64) {
        state.withLockedValue { $0.tally.gaps += Int(missed) }
    }

    /// A member got a copy a second time, or out of order.
    func duplicate() {
        state.withLockedValue { $0.tally.duplicates += 1 }
    }

    /// A message frame whose content is not one of the sender's.
    func unknown() {
        state.withLockedValue { $0.tally.unknown += 1 }
    }

    /// After the drain: messages some member still has not received are lost.
    func finish() {
        state.withLockedValue { state in
            for index in state.slots.indices where state.slots[index].remaining > 0 {
                state.slots[index].remaining = 0
                state.tally.lost += 1
            }
            state.outstanding = 0
        }
    }

    func skipped(_ count: Int, at now: UInt64) {
        state.withLockedValue { state in
            if state.window.contains(now) { state.tally.skipped += count }
        }
    }

    /// Gives up on messages older than `timeout` ns that some member never received;
    /// returns how many window slots that freed.
    func expire(olderThan timeout: UInt64, now: UInt64) -> Int {
        state.withLockedValue { state in
            guard state.outstanding > 0 else { return 0 }
            var freed = 0
            for index in state.slots.indices where state.slots[index].remaining > 0
                && now &- state.slots[index].sentAt > timeout
            {
                state.slots[index].remaining = 0
                freed += 1
            }
            state.outstanding -= freed
            state.tally.lost += freed
            return freed
        }
    }
}
