import Domain
import Foundation

/// Bounds the Argon2id work of a process: at most `maxRunning` hashes at once (each takes a
/// core for tens of milliseconds and 19 MiB), and at most `maxAdmitted` worker threads busy
/// with passwords at all, running or waiting. Past that a request is refused at once with
/// 503 and `Retry-After: 1` instead of waiting, so a flood of password logins can hold at
/// most `maxAdmitted` of the workers and every other request still finds one free.
final class PasswordSlots: @unchecked Sendable {
    // @unchecked: `running` and `admitted` are touched only with `condition` locked.
    private let condition = NSCondition()
    private var running = 0
    private var admitted = 0

    let hasher: PasswordHasher
    let maxRunning: Int
    let maxAdmitted: Int

    /// Half the API workers may be busy with passwords; as many hash at once as there are
    /// cores among them.
    convenience init(workers: Int, cores: Int = ProcessInfo.processInfo.activeProcessorCount) throws {
        let admitted = max(1, workers / 2)
        try self.init(hasher: PasswordHasher(), maxRunning: max(1, min(cores, admitted)), maxAdmitted: admitted)
    }

    init(hasher: PasswordHasher, maxRunning: Int, maxAdmitted: Int) {
        self.hasher = hasher
        self.maxRunning = maxRunning
        self.maxAdmitted = maxAdmitted
    }

    /// Runs `body` with the hasher once a slot is free; 503 when too many wait already.
    func run<T>(_ body: (PasswordHasher) throws -> T) throws -> T {
        condition.lock()
        guard admitted < maxAdmitted else {
            condition.unlock()
            throw HTTPError(.serviceUnavailable, "too many password checks at once; retry shortly", retryAfter: 1)
        }
        admitted += 1
        while running >= maxRunning { condition.wait() }
        running += 1
        condition.unlock()
        defer {
            condition.lock()
            running -= 1
            admitted -= 1
            condition.signal()
            condition.unlock()
        }
        return try body(hasher)
    }
}
