import Testing

@testable import LoadGen

@Suite struct MemberSequenceTests {
    @Test func inOrderIsClean() {
        var member = MemberSequence()
        #expect((0..<5).map { member.received($0) } == Array(repeating: .next, count: 5))
        #expect(member.expected == 5)
    }

    @Test func aGapCountsTheMissedMessages() {
        var member = MemberSequence()
        #expect(member.received(0) == .next)
        #expect(member.received(3) == .gap(missed: 2))
        // The message after the gap is in order again.
        #expect(member.received(4) == .next)
    }

    @Test func aDuplicateOrAnOlderMessageIsCaught() {
        var member = MemberSequence()
        #expect(member.received(0) == .next)
        #expect(member.received(1) == .next)
        #expect(member.received(1) == .duplicate)
        #expect(member.received(0) == .duplicate)
        #expect(member.received(2) == .next)
        // A missed message that comes late is out of order: caught as well.
        #expect(member.received(5) == .gap(missed: 2))
        #expect(member.received(3) == .duplicate)
    }
}

@Suite struct InFlightSendsTests {
    @Test func answersMatchTheirOwnSendOutOfOrder() {
        var sends = InFlightSends()
        let first = sends.issue(since: 100)
        let second = sends.issue(since: 200)
        #expect(sends.answer(second) == .matched(since: 200, written: 200))
        #expect(sends.answer(first) == .matched(since: 100, written: 100))
        #expect(sends.count == 0)
    }

    @Test func duplicateAndUnknownAnswersAreToldApart() {
        var sends = InFlightSends()
        let first = sends.issue(since: 100, written: 150)
        _ = sends.issue(since: 200)
        #expect(sends.answer(first) == .matched(since: 100, written: 150))
        #expect(sends.answer(first) == .duplicate)
        #expect(sends.answer(7) == .unknown)
        // What is left after the drain is what was lost.
        #expect(sends.count == 1)
    }
}
