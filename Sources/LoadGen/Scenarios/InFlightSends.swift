/// The sends of one socket not yet answered, by sequence number (the number in the nonce),
/// each with the time its latency counts from. An answer is matched to the send whose nonce
/// it carries, so an ACK that comes out of order still reads its own send's time, and an
/// ACK for nothing in flight is told apart from one that comes twice.
struct InFlightSends {
    enum Answer: Equatable {
        /// The send was in flight; its latency counts from `since`.
        case matched(since: UInt64)
        /// Already answered (or refused) once.
        case duplicate
        /// A sequence number this socket never sent.
        case unknown
    }

    private var since: [UInt64: UInt64] = [:]
    /// Sequence numbers 0..<issued have been sent.
    private(set) var issued: UInt64 = 0

    var count: Int { since.count }

    /// Records a new send; returns its sequence number.
    mutating func issue(since time: UInt64) -> UInt64 {
        let sequence = issued
        issued += 1
        since[sequence] = time
        return sequence
    }

    /// The answer (ACK or refusal) to `sequence`; it is no longer in flight afterwards.
    mutating func answer(_ sequence: UInt64) -> Answer {
        if let time = since.removeValue(forKey: sequence) { return .matched(since: time) }
        return sequence < issued ? .duplicate : .unknown
    }
}
