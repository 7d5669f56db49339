import Histogram

/// Counters and latency histograms of one part of the load (one event loop's sockets, or
/// the fan-out tracker), merged at the end. Latencies are recorded in microseconds.
struct Tally: Sendable {
    /// Messages or requests sent during the measured window.
    var sent = 0
    /// Answers: ACKs (ws-ingest), fully delivered messages (ws-fanout), 2xx (rest-write).
    var answered = 0
    /// Message frames received (every member's copy counts).
    var delivered = 0
    var errors = 0
    /// Sends a rate schedule wanted but the window did not allow.
    var skipped = 0
    /// Messages never answered (ws-ingest: no ACK after the drain) or never delivered to
    /// every member (ws-fanout: within the loss timeout, or by the end of the drain).
    var lost = 0
    /// Answers or copies that came a second time, or older than one already seen.
    var duplicates = 0
    /// Answers for a sequence number that was never sent.
    var unknown = 0
    /// Copies one member socket skipped: a later message came first.
    var gaps = 0
    /// Answers over the whole run, warm-up and drain included (rest-write compares its 200s
    /// with the rows in the database).
    var answeredAll = 0
    /// send → answer (ACK, last member's delivery, HTTP response); with a rate schedule,
    /// from the send's scheduled time (see `RateTicker`).
    var latency = Tally.histogram()
    /// The frame written → its answer: with a rate, `latency` less the wait behind a busy
    /// socket, to tell the server's share from the schedule's.
    var writtenLatency = Tally.histogram()
    /// send → each delivery.
    var deliveryLatency = Tally.histogram()

    static let maxMicros: UInt64 = 120_000_000

    static func histogram() -> Histogram<UInt64> {
        Histogram(lowestDiscernibleValue: 1, highestTrackableValue: maxMicros, numberOfSignificantValueDigits: .three)
    }

    @inline(__always)
    static func micros(_ nanos: UInt64) -> UInt64 { min(max(nanos / 1000, 1), maxMicros) }

    mutating func add(_ other: Tally) {
        sent += other.sent
        answered += other.answered
        delivered += other.delivered
        errors += other.errors
        skipped += other.skipped
        lost += other.lost
        duplicates += other.duplicates
        unknown += other.unknown
        gaps += other.gaps
        answeredAll += other.answeredAll
        latency.add(other.latency)
        writtenLatency.add(other.writtenLatency)
        deliveryLatency.add(other.deliveryLatency)
    }
}
