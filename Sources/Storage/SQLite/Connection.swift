import CSQLite
import Domain
import Foundation

/// One SQLite connection, configured for two processes sharing one WAL database.
///
/// Not thread-safe: each FastCGI worker thread and each relay storage thread owns its own.
public final class Connection {
    /// How long a writer waits for another connection's write lock before `SQLITE_BUSY`.
    public static let defaultBusyTimeoutMilliseconds: Int32 = 5_000

    let handle: OpaquePointer
    public let path: String
    /// The busy timeout this connection was opened with.
    public let busyTimeoutMilliseconds: Int32
    /// Called after every commit of a `write` transaction.
    public var afterCommit: (() -> Void)?
    private var statements: [String: Statement] = [:]
    /// The busy handler's context; SQLite holds a pointer to it for the connection's life.
    private let busyWaiting: BusyWaiting

    public init(path: String, busyTimeoutMilliseconds: Int32 = Connection.defaultBusyTimeoutMilliseconds,
                synchronous: DatabaseSynchronous = .normal,
                metrics: DatabaseMetrics = .disabled) throws(StorageError) {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK, let handle else {
            let error = StorageError(connection: handle, code: code)
            sqlite3_close_v2(handle)
            throw error
        }
        self.handle = handle
        self.path = path
        self.busyTimeoutMilliseconds = max(busyTimeoutMilliseconds, 1)
        busyWaiting = BusyWaiting(timeoutMilliseconds: self.busyTimeoutMilliseconds, metrics: metrics)
        sqlite3_extended_result_codes(handle, 1)
        // The busy handler comes first: even `PRAGMA journal_mode` takes a lock, and two
        // processes opening a fresh database at once otherwise fail with SQLITE_BUSY.
        sqlite3_busy_handler(handle, busyHandler, Unmanaged.passUnretained(busyWaiting).toOpaque())
        try execute("PRAGMA journal_mode = WAL")
        // NORMAL in WAL mode: a commit survives a crash or kill -9 of the process (the WAL is
        // in the OS's page cache); only a power loss may undo the latest commits. FULL syncs
        // the WAL at every commit, so an acknowledged commit survives a power cut too.
        switch synchronous {
        case .normal: try execute("PRAGMA synchronous = NORMAL")
        case .full: try execute("PRAGMA synchronous = FULL")
        }
        try execute("PRAGMA foreign_keys = ON")
        // A WAL that grew under a burst is cut back to this size when it is next restarted.
        try execute("PRAGMA journal_size_limit = 67108864")
        // No mmap_size: a reader whose snapshot changed unmaps and remaps the whole file at the
        // start of its next transaction, which under a steady write load cost more (munmap
        // with TLB shootdowns) than the pread() calls it saves.
    }

    /// Settings for the one connection that carries a process's writes (the relay's storage
    /// thread, FCGIApp's shared writer).
    ///
    /// - Parameter autocheckpointPages: the WAL size at which a commit runs a checkpoint
    ///   itself (SQLite's default is 1,000 pages). The `Checkpointer` thread copies the WAL in
    ///   the background in between, so such a checkpoint mostly completes what it did and
    ///   lets the WAL restart; see the callers for the values measured best.
    public func configureForWriting(autocheckpointPages: Int32) throws(StorageError) {
        // A 64 MB page cache (the default is 2 MB): the index leaves a busy database writes
        // into stay in memory instead of being re-read and, worse, spilled to the WAL in the
        // middle of a transaction. A writer keeps its cache across its own commits; a
        // reader's is emptied by every other connection's write, so readers keep the default.
        try execute("PRAGMA cache_size = -65536")
        try execute("PRAGMA wal_autocheckpoint = \(autocheckpointPages)")
    }

    /// How long the next statements wait for another connection's lock (at least 1 ms).
    /// `SerializedStore` shortens it by the time a caller already spent queueing for the
    /// process's writer, so that no request waits for a held lock longer than the timeout.
    public func setBusyWait(milliseconds: Int32) {
        busyWaiting.timeoutMilliseconds = max(milliseconds, 1)
    }

    deinit {
        statements.removeAll()
        sqlite3_close_v2(handle)
    }

    /// Runs one or more SQL statements with no parameters (migrations, pragmas).
    public func execute(_ sql: String) throws(StorageError) {
        var message: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &message)
        guard code == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(code))
            sqlite3_free(message)
            throw StorageError(code: sqlite3_extended_errcode(handle), message: text, sql: sql,
                               systemErrno: sqlite3_system_errno(handle))
        }
    }

    /// A prepared statement for `sql`, compiled once per connection and reused.
    public func statement(_ sql: String) throws(StorageError) -> Statement {
        if let cached = statements[sql] { return cached }
        let statement = try Statement(connection: self, sql: sql)
        statements[sql] = statement
        return statement
    }

    /// The text of every statement this connection has prepared (each once): what the query
    /// plan test explains.
    package var preparedSQL: [String] { Array(statements.keys) }

    /// The rowid of the last insert on this connection.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Rows changed by the last statement.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// Ends whatever a caller left open on this connection and returns the SQL of each: a
    /// statement stepped but neither finished nor reset, and a transaction not committed.
    /// Either keeps the snapshot it began with, so that every later query here would go on
    /// seeing the database as it was then (a user created since would be "not found").
    /// One check when nothing was left, the usual case.
    public func endLeftovers() -> [String] {
        guard sqlite3_txn_state(handle, nil) != SQLITE_TXN_NONE else { return [] }
        var left: [String] = []
        var statement = sqlite3_next_stmt(handle, nil)
        while let current = statement {
            if sqlite3_stmt_busy(current) != 0 {
                left.append(sqlite3_sql(current).map { String(cString: $0) } ?? "?")
                sqlite3_reset(current)
            }
            statement = sqlite3_next_stmt(handle, current)
        }
        if sqlite3_get_autocommit(handle) == 0 {
            left.append("BEGIN (a transaction never committed)")
            try? execute("ROLLBACK")
        }
        return left
    }

    /// Runs `body` in a write transaction, `BEGIN IMMEDIATE`: the write lock is taken at the
    /// start, where the busy timeout applies, instead of at the first write, where SQLite
    /// would answer `SQLITE_BUSY` at once to avoid a deadlock.
    @discardableResult
    public func write<T>(_ body: () throws -> T) throws -> T {
        let result = try transaction("BEGIN IMMEDIATE", body)
        afterCommit?()
        return result
    }

    /// Runs `body` in a read transaction, so that its queries see one snapshot.
    public func read<T>(_ body: () throws -> T) throws -> T {
        try transaction("BEGIN DEFERRED", body)
    }

    private func transaction<T>(_ begin: String, _ body: () throws -> T) throws -> T {
        try statement(begin).run()
        do {
            let result = try body()
            try statement("COMMIT").run()
            return result
        } catch {
            if sqlite3_get_autocommit(handle) == 0 {
                _ = try? statement("ROLLBACK").run()
            }
            throw error
        }
    }
}

@available(*, unavailable)
extension Connection: Sendable {}

/// The busy handler's context: the timeout, and the counters of waits and retries.
private final class BusyWaiting {
    var timeoutMilliseconds: Int32
    let metrics: DatabaseMetrics

    init(timeoutMilliseconds: Int32, metrics: DatabaseMetrics) {
        self.timeoutMilliseconds = timeoutMilliseconds
        self.metrics = metrics
    }
}

/// SQLite's busy handler: retry every 100 µs for the first 2 ms, then every millisecond, until
/// the timeout (in the context, a `BusyWaiting`) is spent. SQLite's built-in
/// `busy_timeout` sleeps 1, 2, 5, 10… ms between tries, which leaves the lock idle for most of
/// a short transaction when two processes alternate writes.
private func busyHandler(_ context: UnsafeMutableRawPointer?, _ attempts: Int32) -> Int32 {
    let waiting = Unmanaged<BusyWaiting>.fromOpaque(context!).takeUnretainedValue()
    let timeoutMilliseconds = waiting.timeoutMilliseconds
    if attempts == 0 { waiting.metrics.busyWaits?.increment() }
    let fastAttempts: Int32 = 20
    if attempts < fastAttempts {
        usleep(100)
        waiting.metrics.busyRetries?.increment()
        return 1
    }
    guard attempts - fastAttempts < timeoutMilliseconds - 2 else { return 0 }
    usleep(1_000)
    waiting.metrics.busyRetries?.increment()
    return 1
}

@available(*, unavailable)
extension Statement: Sendable {}
