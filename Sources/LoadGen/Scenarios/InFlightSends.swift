/// The sends of one socket not yet answered, by sequence number (the number in the nonce),
/// each with the time its latency counts from (its scheduled time with a rate) and the time
/// it was written. An answer is matched to the send whose nonce
/// it carries, so an ACK that comes out of order still reads its own send's time, and an
/// ACK for nothing in flight is told apart from one that comes twice.
struct InFlightSends {
    enum Answer: Equatable {
        /// The send was in flight; its latency counts from `since`, and it was written at `written`.
        case matched(since: UInt64, written: UInt64)
        /// Already answered (or refused) once.
        case duplicate
        /// A sequence number this socket never sent.
        case unknown
    }

    private var times: [UInt64: (since: UInt64, written: UInt64)] = [:]
    /// Sequence numbers 0..<issued have been sent.
    private(set) var issued: UInt64 = 0

    var count: Int { times.count }

    /// Records a new send, written at `written` (`since` too unless a schedule says otherwise);
    /// returns its sequence number.
    mutating func issue(since: UInt64, written: UInt64? = nil) -> UInt64 {
        let sequence = issued
        issued += 1
        times[sequence] = (since, written ?? since)
        return sequence
    }

    /// The answer (ACK or refusal) to `sequence`; it is no longer in flight afterwards.
    mutating func answer(_ sequence: UInt64) -> Answer {
        if let time = times.removeValue(forKey: sequence) { return .matched(since: time.since, written: time.written) }
        return sequence < issued ? .duplicate : .unknown
    }
}
