import Domain
import Foundation

/// One `Store` shared by all threads of a process for its writes, used by one at a time,
/// with group commit for messages.
///
/// Why one connection rather than a write on each thread's own: every write empties the
/// page cache of the process's other connections, so each write on a different connection
/// began by re-reading its pages, and writers waited for each other in SQLite's sleeping busy
/// handler. Here writers queue on a lock and wake the moment it is free, the writer's cache
/// stays warm, and SQLite's locking only arbitrates between processes.
///
/// Messages are group-committed: a thread that finds no commit under way commits its own
/// message together with every message other threads queued meanwhile, in one transaction,
/// and hands each its result (flat combining). Under load, one commit's fixed cost — its
/// locks and WAL writes — is shared by all waiting requests.
///
/// The locks are `NSLock`/`NSCondition` (pthread primitives that sleep); the standard
/// library's `Mutex` spun in `_lockSlow` for 14% of FCGIApp's CPU time on 2 cores.
public final class SerializedStore: @unchecked Sendable {
    // @unchecked: `store` is touched only while `storeLock` is held; `queue`, `combining`
    // and every ticket's `result` only while `queueCondition` is held.
    private let storeLock = NSLock()
    private let store: Store
    private let queueCondition = NSCondition()
    private var queue: [Ticket] = []
    private var combining = false

    /// Most messages one transaction commits.
    public static let maxBatch = 256

    private final class Ticket {
        let outgoing: OutgoingMessage
        let queuedAt = ContinuousClock.now
        var result: Result<PostedMessage, any Error>?
        init(_ outgoing: OutgoingMessage) { self.outgoing = outgoing }
    }

    private let metrics: DatabaseMetrics
    /// The send limit every message posted here is held to (`RATE_SEND`); nil = off.
    public let sendLimit: RateLimit?

    public init(_ store: Store, metrics: DatabaseMetrics = .disabled, sendLimit: RateLimit? = nil) {
        self.store = store
        self.metrics = metrics
        self.sendLimit = sendLimit
    }

    /// Runs `body` with the shared store, alone.
    ///
    /// The busy timeout counts from the call, not from the moment the store is free: while
    /// another process holds the write lock, each writer queued here would otherwise wait its
    /// own full timeout after the one before it, and the last of twenty would answer after
    /// twenty timeouts. A caller whose time ran out in the queue fails at once with
    /// `SQLITE_BUSY`, like one that waited at the lock itself.
    public func perform<T>(_ body: (Store) throws -> T) throws -> T {
        try perform(since: ContinuousClock.now, body)
    }

    /// Runs `body` with the shared store only if no one in this process is using it now,
    /// waiting at most `busyWaitMilliseconds` for another process's lock; nil when the store
    /// was taken. For bookkeeping a request must never wait for (a session's last use).
    public func performIfFree<T>(busyWaitMilliseconds: Int32, _ body: (Store) throws -> T) throws -> T? {
        guard storeLock.try() else { return nil }
        defer { storeLock.unlock() }
        let connection = store.database
        connection.setBusyWait(milliseconds: busyWaitMilliseconds)
        defer { connection.setBusyWait(milliseconds: connection.busyTimeoutMilliseconds) }
        return try body(store)
    }

    private func perform<T>(since start: ContinuousClock.Instant, _ body: (Store) throws -> T) throws -> T {
        storeLock.lock()
        defer { storeLock.unlock() }
        let connection = store.database
        let waited = Self.milliseconds(ContinuousClock.now - start)
        let remaining = Int(connection.busyTimeoutMilliseconds) - waited
        guard remaining > 0 else { throw StorageError.busyBeforeStart(waitedMilliseconds: waited) }
        connection.setBusyWait(milliseconds: Int32(remaining))
        defer { connection.setBusyWait(milliseconds: connection.busyTimeoutMilliseconds) }
        return try body(store)
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1_000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    /// Stores one message, committed together with whatever other threads are posting.
    public func post(_ outgoing: OutgoingMessage) throws -> PostedMessage {
        let ticket = Ticket(outgoing)
        queueCondition.lock()
        queue.append(ticket)
        while ticket.result == nil {
            if combining {
                queueCondition.wait()
                continue
            }
            // Nobody is committing: commit everything queued, this ticket included.
            combining = true
            let batch = Array(queue.prefix(Self.maxBatch))
            queue.removeFirst(batch.count)
            queueCondition.unlock()
            // The batch waits for a held lock no longer than its oldest ticket may.
            let results: [Result<PostedMessage, any Error>]
            do {
                results = try perform(since: batch[0].queuedAt) { store in
                    metrics.commit(count: batch.count) { store.post(batch.map(\.outgoing), sendLimit: sendLimit) }
                }
            } catch {
                results = batch.map { _ in .failure(error) }
            }
            queueCondition.lock()
            for (waiting, result) in zip(batch, results) { waiting.result = result }
            combining = false
            queueCondition.broadcast()
        }
        queueCondition.unlock()
        return try ticket.result!.get()
    }
}
