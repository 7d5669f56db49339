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
        var result: Result<PostedMessage, any Error>?
        init(_ outgoing: OutgoingMessage) { self.outgoing = outgoing }
    }

    /// The send limit every message posted here is held to (`RATE_SEND`); nil = off.
    public let sendLimit: RateLimit?

    public init(_ store: Store, sendLimit: RateLimit? = nil) {
        self.store = store
        self.sendLimit = sendLimit
    }

    /// Runs `body` with the shared store, alone.
    public func perform<T>(_ body: (Store) throws -> T) throws -> T {
        storeLock.lock()
        defer { storeLock.unlock() }
        return try body(store)
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
            let results = (try? perform { store in store.post(batch.map(\.outgoing), sendLimit: sendLimit) })
                ?? batch.map { _ in .failure(StorageError(code: 0, message: "group commit failed")) }
            queueCondition.lock()
            for (waiting, result) in zip(batch, results) { waiting.result = result }
            combining = false
            queueCondition.broadcast()
        }
        queueCondition.unlock()
        return try ticket.result!.get()
    }
}
