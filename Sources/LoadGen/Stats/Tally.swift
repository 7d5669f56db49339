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
    /// Messages never fully delivered within the loss timeout.
    var lost = 0
    /// send → answer (ACK, last member's delivery, HTTP response).
    var latency = Tally.histogram()
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
        latency.add(other.latency)
        deliveryLatency.add(other.deliveryLatency)
    }
}
