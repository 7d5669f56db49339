import Foundation

/// Sends `NOTIFY channel, payload` from a thread and connection of its own, so that a caller
/// on an event loop never waits for the database: what the relays tell each other on
/// PostgreSQL (TYPING, presence changes), where on SQLite they send datagrams to the relays of
/// their host.
///
/// Like a datagram, a notification is dropped rather than queued without bound (more than
/// `maxQueued` waiting, or the database unreachable): each is throttled where it arises and
/// the protocol allows a lost TYPING; a lost presence change leaves another relay's PRESENCE
/// frames late, never `GET /presence` wrong. The connection reopens itself after a failure
/// (`PostgresConnection`).
public final class PostgresNotifier: @unchecked Sendable {
    // @unchecked: `queue` and `stopping` are touched only with `condition` held.
    public static let maxQueued = 1_000

    private let url: String
    private let channel: String
    private let onError: @Sendable (any Error) -> Void
    private let condition = NSCondition()
    private var queue: [String] = []
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)

    public init(url: String, channel: String, onError: @escaping @Sendable (any Error) -> Void) {
        precondition(channel.allSatisfy { $0.isLetter || $0 == "_" }, "a channel name is an identifier")
        self.url = url
        self.channel = channel
        self.onError = onError
    }

    /// Queues `payload` (at most 8,000 bytes, PostgreSQL's limit); never blocks.
    public func notify(_ payload: String) {
        condition.lock()
        if queue.count < Self.maxQueued {
            queue.append(payload)
            condition.signal()
        }
        condition.unlock()
    }

    public func start() {
        let thread = Thread { [self] in
            defer { finished.signal() }
            var connection: PostgresConnection?
            while let batch = next() {
                do {
                    let open = try connection ?? PostgresConnection(url: url)
                    connection = open
                    for payload in batch {
                        try open.run("SELECT pg_notify(?, ?)", [.text(channel), .text(payload)])
                    }
                } catch {
                    onError(error)
                    // Not a tight loop against a database that is down: what waited is dropped.
                    usleep(250_000)
                }
            }
        }
        thread.name = "pg-notify"
        thread.start()
    }

    /// Stops the thread once it has sent what was queued.
    public func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
        finished.wait()
    }

    /// What was queued since the last call, waiting for something; nil once stopped and empty.
    private func next() -> [String]? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !stopping { condition.wait() }
        guard !queue.isEmpty else { return nil }
        let batch = queue
        queue.removeAll(keepingCapacity: true)
        return batch
    }
}
