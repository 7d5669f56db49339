import ArgumentParser

/// Range checks for numeric flags: swift-argument-parser parses the number, this keeps a
/// typo from starting an unbounded run (`--duration 1e9`, `--users 600000`).
enum Bounds {
    static func check<Value: Comparable>(_ value: Value, _ range: ClosedRange<Value>, _ flag: String) throws {
        guard range.contains(value) else {
            throw ValidationError("--\(flag) must be in \(range.lowerBound)...\(range.upperBound), got \(value)")
        }
    }

    /// `users` for the scenarios that pair users into direct chats.
    static func checkPairs(_ users: Int) throws {
        guard users >= 2, users % 2 == 0 else {
            throw ValidationError("--users must be even and at least 2 (two users per direct chat)")
        }
    }
}
