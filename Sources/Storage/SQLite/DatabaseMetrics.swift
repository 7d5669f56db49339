import CSQLite
import CoreMetrics
import Foundation

/// What Storage records about the database, in a process's metrics (swift-metrics; the
/// processes hand in their Prometheus factory). `disabled` records nothing: tools and tests.
public struct DatabaseMetrics: Sendable {
    /// `messenger_db_busy_waits_total`: a statement found another connection holding the lock
    /// (SQLite's busy handler was called for it).
    let busyWaits: Counter?
    /// `messenger_db_busy_retries_total`: every retry after such a wait (the handler sleeps
    /// 100 µs, later 1 ms, between them).
    let busyRetries: Counter?
    /// `messenger_db_commit_duration_seconds`: one group commit, from taking the write
    /// connection to its COMMIT (both processes commit messages in batches).
    let commitDuration: CoreMetrics.Timer?
    /// `messenger_db_commit_batch_size`: messages per group commit.
    let batchSize: Recorder?
    /// `messenger_db_sqlite_memory_bytes`, set at scrape time (`recordMemory`): what SQLite has
    /// allocated in this process, its page caches first among it — so that a process's
    /// growing RSS can be told apart: caches filling up to their `cache_size`, or a leak.
    let memoryUsed: Meter?

    public static let disabled = DatabaseMetrics(busyWaits: nil, busyRetries: nil, commitDuration: nil, batchSize: nil,
                                                 memoryUsed: nil)

    private init(busyWaits: Counter?, busyRetries: Counter?, commitDuration: CoreMetrics.Timer?, batchSize: Recorder?,
                 memoryUsed: Meter?) {
        self.busyWaits = busyWaits
        self.busyRetries = busyRetries
        self.commitDuration = commitDuration
        self.batchSize = batchSize
        self.memoryUsed = memoryUsed
    }

    public init(factory: any MetricsFactory) {
        self.init(busyWaits: Counter(label: "messenger_db_busy_waits_total", factory: factory),
                  busyRetries: Counter(label: "messenger_db_busy_retries_total", factory: factory),
                  commitDuration: CoreMetrics.Timer(label: "messenger_db_commit_duration_seconds", factory: factory),
                  batchSize: Recorder(label: "messenger_db_commit_batch_size", aggregate: true, factory: factory),
                  memoryUsed: Meter(label: "messenger_db_sqlite_memory_bytes", factory: factory))
    }

    /// Sets the scrape-time gauge of SQLite's memory.
    public func recordMemory() {
        memoryUsed?.set(Int(sqlite3_memory_used()))
    }

    /// Runs one group commit of `count` messages, recording its duration and size.
    public func commit<T>(count: Int, _ body: () throws -> T) rethrows -> T {
        guard let commitDuration else { return try body() }
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            commitDuration.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds &- start))
            batchSize?.record(count)
        }
        return try body()
    }
}
