import Dispatch

/// Durations for log lines, on the monotonic clock.
public enum Elapsed {
    /// Nanoseconds since boot (`DispatchTime`, CLOCK_MONOTONIC).
    public static func now() -> UInt64 {
        DispatchTime.now().uptimeNanoseconds
    }

    /// `1234567` ns → `"1.234"`: milliseconds with three decimals, without a formatter.
    public static func milliseconds(_ nanoseconds: UInt64) -> String {
        let micros = nanoseconds / 1_000
        let fraction = String(micros % 1_000)
        return "\(micros / 1_000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}
