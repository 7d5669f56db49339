import Domain
import Foundation
import Logging
import NIOCore
import Storage
import Synchronization

/// The relay's storage thread: commits sends in batches, and delivers every committed event —
/// its own and FCGIApp's — to every connection allowed to see it, in seq order.
///
/// One thread owns the database connection and the delivery cursor, which makes the order
/// and the "once per connection" rule simple: an event is fanned out exactly when the cursor
/// passes its seq. Its own commits are delivered straight from memory when they follow the
/// cursor; anything else (a REST write, a lost notification, a gap) is read back from the
/// database, so nothing committed is ever skipped (DESIGN, invariant 2).
///
/// Each round: register joining connections (`Replay`), commit sends (`CommitRound`),
/// deliver new events (`FanOut`), answer senders, prune old events when due.
final class Dispatcher: Sendable {
    private let queue: SendQueue
    private let finished = DispatchSemaphore(value: 0)
    /// `deliveredThrough`, published for the event loops.
    private let cursor: Atomic<Int64>
    /// When the storage thread last finished a round (`DispatchTime` uptime, ns): the relay's
    /// health check tells a stalled storage thread from a quiet one (a round runs at least
    /// every poll interval).
    private let lastRound: Atomic<UInt64>
    /// Everything the storage thread alone touches.
    private let thread: ThreadConfined<StorageThread>

    static let catchUpPageSize = 500

    init(store: Store, registry: ConnectionRegistry, limits: RelayLimits, logger: Logger,
         pollInterval: TimeInterval = 0.25, retention: EventRetention = EventRetention(),
         metrics: RelayMetrics = .disabled, sendLimit: RateLimit? = nil, peers: RelayPeers = .alone) throws {
        queue = SendQueue(limits: limits, pollInterval: pollInterval)
        // Deliver from now on; a client that was away resumes with `since`.
        let head = try store.latestSeq()
        // Nobody is connected to a relay that is starting.
        try store.resetPresence(relay: peers.instance, relayInstances: peers.count)
        cursor = Atomic(head)
        lastRound = Atomic(DispatchTime.now().uptimeNanoseconds)
        thread = ThreadConfined(StorageThread(store: store, registry: registry, limits: limits,
                                                      logger: logger, retention: retention, head: head,
                                                      metrics: metrics, sendLimit: sendLimit, peers: peers))
    }

    func start() {
        let worker = Thread { [self] in
            run()
            finished.signal()
        }
        worker.name = "relay-storage"
        worker.start()
    }

    /// Queues a send; `false` when the queue is full and the client should retry.
    func submit(_ send: PendingSend) -> Bool { queue.submit(send) }

    /// The seq of the last event fanned out. A connection accepted now is owed every event
    /// after it.
    var deliveryCursor: Int64 { cursor.load(ordering: .acquiring) }

    /// Seconds since the storage thread last finished a round.
    var secondsSinceLastRound: Double {
        Double(DispatchTime.now().uptimeNanoseconds &- lastRound.load(ordering: .relaxed)) / 1e9
    }

    /// Registers a connection, first sending it what `join.start` says it is owed. Happens on
    /// the storage thread between rounds, so that nothing is missed or doubled between the
    /// handshake (or the client's `since`) and the registration.
    func join(_ join: Join) { queue.join(join) }

    /// Queues a READ, TYPING or disconnection for the next round.
    func signal(_ signal: Signal) { queue.signal(signal) }

    /// Asks for a catch-up read soon (a notification arrived).
    func wake() { queue.wake() }

    /// Commits and answers everything queued, then stops the thread.
    func stop() {
        queue.stop()
        finished.wait()
    }

    private func run() {
        while true {
            let round = queue.next()
            let delivered = thread.value.process(round)
            cursor.store(delivered, ordering: .releasing)
            thread.value.pruneIfDue()
            thread.value.endLeftovers()
            lastRound.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
            if round.isLast { return }
        }
    }
}

/// How long events are kept, and how often the relay prunes them.
struct EventRetention: Sendable {
    var maxAge: Int64 = 30 * 86_400
    var interval: TimeInterval = 600
    /// Events deleted per round at most, so that pruning never holds the write lock long.
    var batch = 5_000
}

/// The storage thread's state: its store, the delivery cursor, and the round's parts.
private final class StorageThread {
    private let store: Store
    private let registry: ConnectionRegistry
    private let logger: Logger
    private let encoder: EventEncoder
    private let replay: Replay
    private let commitRound: CommitRound
    private let fanOut: FanOut
    private let signals: SignalHandler
    private let retention: EventRetention
    private let metrics: RelayMetrics
    private let peers: RelayPeers
    private var deliveredThrough: Int64
    private var nextPrune: TimeInterval = 0
    private var pruneBacklog = false
    private static let pruneBusyWaitMilliseconds: Int32 = 200

    init(store: Store, registry: ConnectionRegistry, limits: RelayLimits, logger: Logger,
         retention: EventRetention, head: Int64, metrics: RelayMetrics, sendLimit: RateLimit?,
         peers: RelayPeers) {
        self.store = store
        self.metrics = metrics
        self.peers = peers
        self.registry = registry
        self.logger = logger
        self.retention = retention
        encoder = EventEncoder(store: store)
        replay = Replay(store: store, registry: registry, encoder: encoder, limits: limits)
        commitRound = CommitRound(store: store, logger: logger, metrics: metrics.database, sendLimit: sendLimit)
        fanOut = FanOut(store: store, registry: registry, encoder: encoder)
        signals = SignalHandler(store: store, registry: registry, fanOut: fanOut, peers: peers, logger: logger)
        deliveredThrough = head
    }

    /// Ends a query the round left in progress, which would pin the store's snapshot: the
    /// next rounds would neither see other processes' commits nor be able to write.
    func endLeftovers() {
        let left = store.database.endLeftovers()
        guard !left.isEmpty else { return }
        logger.error("storage round left the database connection in progress",
                     metadata: ["statements": .string(left.joined(separator: " | "))])
    }

    /// One round; returns the delivery cursor after it.
    func process(_ round: SendQueue.Round) -> Int64 {
        var outbox = Outbox()
        var joined: [Int64] = []
        for join in round.joins {
            do {
                try replay.register(join, through: deliveredThrough, into: &outbox)
                joined.append(join.userID)
            } catch {
                // This socket alone: it reconnects and resumes; the others go on.
                logger.error("registering a connection failed", metadata: ["error": "\(error)"])
                join.handle.close(.internalError)
            }
        }
        var outcome = commitRound.commit(round.sends)
        signals.handle(round.signals, joined: joined, replies: &outcome.replies, into: &outbox)
        if !outcome.committed.isEmpty || round.signals.contains(where: \.isRead) { peers.committed() }
        do {
            try deliver(outcome.committed, into: &outbox)
        } catch {
            // The cursor stays where delivery stopped; the next round reads on from there.
            logger.error("delivering events failed", metadata: ["error": "\(error)"])
        }
        // After the fan-out, so that a sender sees its message before the ACK for it.
        for (handle, frame) in outcome.replies {
            outbox.add(handle, encoder.encode(frame))
        }
        let delivered = outbox.flush()
        if delivered > 0 { metrics.deliveries.increment(by: delivered) }
        return deliveredThrough
    }

    /// Delivers every event after the cursor: this round's own commits from memory when they
    /// are exactly the next seqs, else read back from the database.
    private func deliver(_ committed: [(seq: Int64, message: Message)], into outbox: inout Outbox) throws {
        if let first = committed.first, first.seq == deliveredThrough + 1,
           zip(committed, committed.dropFirst()).allSatisfy({ $0.seq + 1 == $1.seq }) {
            for (seq, message) in committed {
                try fanOut.deliver(Event(seq: seq, op: .message, audience: .chat(message.chatID), body: .message(message)),
                                   into: &outbox)
                deliveredThrough = seq
            }
        } else if registry.isEmpty {
            // Nobody to deliver to: move the cursor without reading the events. A connection
            // joining later replays from its own position.
            deliveredThrough = max(deliveredThrough, try store.latestSeq())
        } else {
            while true {
                let page = try store.events(after: deliveredThrough, limit: Dispatcher.catchUpPageSize)
                for event in page.events {
                    try fanOut.deliver(event, into: &outbox)
                    deliveredThrough = event.seq
                }
                deliveredThrough = page.through
                if page.isLast { return }
            }
        }
    }

    /// Deletes events older than the retention, a batch per round until none are left, then
    /// again after the interval.
    func pruneIfDue() {
        let now = ProcessInfo.processInfo.systemUptime
        guard pruneBacklog || now >= nextPrune else { return }
        // Pruning can wait: while another process holds the write lock it gives up after a
        // moment and tries again at the next interval, instead of holding this thread (and the
        // sends queued behind it) for a whole busy timeout.
        store.database.setBusyWait(milliseconds: Self.pruneBusyWaitMilliseconds)
        defer { store.database.setBusyWait(milliseconds: store.database.busyTimeoutMilliseconds) }
        do {
            let deleted = try store.pruneEvents(olderThan: retention.maxAge, limit: retention.batch)
            // Rate buckets untouched for a day are full under any limit of one a day or more.
            try store.pruneRateBuckets(untouchedSince: Store.rateClock() - 86_400, limit: retention.batch)
            try store.pruneSessions(expiredBefore: Int64(time(nil)) - 86_400, limit: retention.batch)
            pruneBacklog = deleted >= retention.batch
            if deleted > 0 { logger.info("pruned events", metadata: ["count": "\(deleted)"]) }
        } catch let error as StorageError where error.isBusy {
            logger.warning("pruning events skipped: the database is locked")
            pruneBacklog = false
        } catch {
            logger.error("pruning events failed", metadata: ["error": "\(error)"])
            pruneBacklog = false
        }
        if !pruneBacklog { nextPrune = now + retention.interval }
    }
}

/// The storage thread's state, passed to the thread as `Sendable`: only that thread ever
/// reads `value`.
private final class ThreadConfined<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
