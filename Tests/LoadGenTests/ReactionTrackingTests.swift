import NIOCore
import Testing

@testable import LoadGen

/// ws-reactions' bookkeeping: lanes in the shared tracker, and each member's reading of the
/// alternating changes of every reactor.
@Suite struct ReactionTrackingTests {
    /// Reactor user ids 100 (lane 0) and 101 (lane 1).
    private static let lanes: [UInt64: Int] = [100: 0, 101: 1]

    private static func frame(seq: Int, user: Int, added: Bool) -> [UInt8] {
        Array(#"{"op":"REACTION","seq":\#(seq),"d":{"chat_id":1,"message_id":2,"user_id":\#(user),"emoji":"x","added":\#(added)}}"#.utf8)
    }

    private static func tracker(members: Int) -> FanoutTracker {
        let tracker = FanoutTracker(window: 2, lanes: 2)
        tracker.start(window: MeasureWindow(warmup: 0, duration: 3600), expected: members)
        return tracker
    }

    private static func receive(_ member: ReactionMember, _ frames: [[UInt8]]) {
        let socket = WebSocketClient(behavior: member)
        for frame in frames { frame.withUnsafeBytes { member.received(text: $0, on: socket) } }
    }

    @Test func lanesNeverShareASlotAcrossTheRing() {
        // Lane 1 far ahead of lane 0 (k × 2 + lane): each change still has its own slot.
        let tracker = Self.tracker(members: 1)
        tracker.sent(0 * 2 + 0, at: monotonicNanos(), since: monotonicNanos())
        tracker.sent(1024 * 2 + 1, at: monotonicNanos(), since: monotonicNanos())
        #expect(tracker.outstanding == 2)
        #expect(tracker.delivered(0, at: monotonicNanos()))
        #expect(tracker.delivered(1024 * 2 + 1, at: monotonicNanos()))
        tracker.finish()
        #expect(tracker.tally.lost == 0)
    }

    @Test func aMemberMatchesEachReactorsChangesInOrder() {
        let tracker = Self.tracker(members: 1)
        let completed = CompletedLanes()
        let member = ReactionMember(tracker: tracker, lanes: Self.lanes) { completed.add($0) }
        for sequence: UInt64 in [0, 1] { tracker.sent(sequence, at: monotonicNanos(), since: monotonicNanos()) }
        Self.receive(member, [Self.frame(seq: 5, user: 101, added: true), Self.frame(seq: 6, user: 100, added: true)])
        #expect(completed.lanes == [1, 0])
        // Each reactor's second change: a removal, sequence 1 × 2 + lane.
        for sequence: UInt64 in [2, 3] { tracker.sent(sequence, at: monotonicNanos(), since: monotonicNanos()) }
        Self.receive(member, [Self.frame(seq: 7, user: 100, added: false), Self.frame(seq: 8, user: 101, added: false)])
        #expect(completed.lanes == [1, 0, 0, 1])
        let tally = tracker.tally
        #expect(tally.delivered == 4 && tally.answered == 4)
        #expect(tally.gaps == 0 && tally.duplicates == 0 && tally.unknown == 0)
    }

    @Test func aMissedChangeIsAGapAndIsLostForTheOthers() {
        let tracker = Self.tracker(members: 1)
        let member = ReactionMember(tracker: tracker, lanes: Self.lanes) { _ in }
        tracker.sent(0, at: monotonicNanos(), since: monotonicNanos())
        tracker.sent(2, at: monotonicNanos(), since: monotonicNanos())
        // Lane 0's first change (added) never came; its second (removed) is out of step.
        Self.receive(member, [Self.frame(seq: 9, user: 100, added: false)])
        tracker.finish()
        let tally = tracker.tally
        #expect(tally.gaps == 1)
        #expect(tally.delivered == 1)
        #expect(tally.lost == 1)
    }

    @Test func aRepeatedSeqIsADuplicateAndAStrangerUnknown() {
        let tracker = Self.tracker(members: 2)
        let member = ReactionMember(tracker: tracker, lanes: Self.lanes) { _ in }
        tracker.sent(0, at: monotonicNanos(), since: monotonicNanos())
        Self.receive(member, [Self.frame(seq: 4, user: 100, added: true), Self.frame(seq: 4, user: 100, added: true),
                              Self.frame(seq: 5, user: 7, added: true)])
        let tally = tracker.tally
        #expect(tally.delivered == 1)
        #expect(tally.duplicates == 1)
        #expect(tally.unknown == 1)
    }
}

/// Lanes reported complete, in order (the tests call from one thread).
private final class CompletedLanes: @unchecked Sendable {
    private(set) var lanes: [Int] = []
    func add(_ lane: Int) { lanes.append(lane) }
}
