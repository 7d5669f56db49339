/// What one ws-fanout member socket has seen of the sender's messages. The relay delivers
/// every message of a chat to every connection in id order, once (DESIGN.md), and the
/// sender's sequence numbers are committed in order, so each socket must see 0, 1, 2, …
/// exactly. Checked per socket: counted per message, a duplicate to one socket would hide
/// a missing copy to another.
struct MemberSequence {
    enum Outcome: Equatable {
        /// The next message in order.
        case next
        /// A new message, but `missed` messages before it never came to this socket.
        case gap(missed: UInt64)
        /// A message this socket has already had, or one older than it (out of order).
        case duplicate
    }

    /// The sequence number this socket should see next.
    private(set) var expected: UInt64 = 0

    mutating func received(_ sequence: UInt64) -> Outcome {
        guard sequence >= expected else { return .duplicate }
        let missed = sequence - expected
        expected = sequence + 1
        return missed == 0 ? .next : .gap(missed: missed)
    }
}
