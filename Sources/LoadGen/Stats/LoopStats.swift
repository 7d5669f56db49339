/// The tally of the sockets or sessions on one event loop; touched on that loop only.
final class LoopStats {
    /// Set when the load starts; until then nothing is in the window.
    var window = MeasureWindow.never
    private(set) var tally = Tally()

    @inline(__always)
    func sent(at now: UInt64) {
        if window.contains(now) { tally.sent += 1 }
    }

    @inline(__always)
    func answered(at now: UInt64, after nanos: UInt64, sinceWritten written: UInt64? = nil) {
        tally.answeredAll += 1
        guard window.contains(now) else { return }
        tally.answered += 1
        tally.latency.record(Tally.micros(nanos))
        tally.writtenLatency.record(Tally.micros(written ?? nanos))
    }

    @inline(__always)
    func delivered(at now: UInt64) {
        if window.contains(now) { tally.delivered += 1 }
    }

    /// Errors count whenever they happen: a clean run has none, warm-up included.
    func error() {
        tally.errors += 1
    }

    /// An answer for a send already answered.
    func duplicate() {
        tally.duplicates += 1
    }

    /// An answer for a send never made.
    func unknown() {
        tally.unknown += 1
    }

    /// Sends never answered by the end of the drain.
    func lost(_ count: Int) {
        tally.lost += count
    }

    func skipped(_ count: Int, at now: UInt64) {
        if window.contains(now) { tally.skipped += count }
    }
}

@available(*, unavailable)
extension LoopStats: Sendable {}
