/// The measured interval on the monotonic clock: events before `start` are warm-up,
/// events at or after `end` are drain.
struct MeasureWindow: Sendable {
    let start: UInt64
    let end: UInt64

    init(warmup: Double, duration: Double, from now: UInt64 = monotonicNanos()) {
        start = now + warmup.nanoseconds
        end = start + duration.nanoseconds
    }

    private init(start: UInt64, end: UInt64) {
        self.start = start
        self.end = end
    }

    /// Before the load starts: contains nothing.
    static let never = MeasureWindow(start: .max, end: .max)

    @inline(__always)
    func contains(_ time: UInt64) -> Bool { time >= start && time < end }

    var seconds: Double { Double(end - start) / 1e9 }
}
