import CPostgres
import CSQLite
import Domain
import Foundation

/// One PostgreSQL connection through libpq: blocking calls on the caller's thread, and like a
/// SQLite `Connection` owned by one thread.
///
/// libpq rather than postgres-nio: the Store is synchronous and runs on threads of our own
/// (FastCGI's workers, the relay's storage thread), as SQLite's calls do. libpq is a system
/// library like sqlite3 (Debian's `libpq-dev`), and its blocking calls fit those threads as
/// they are; postgres-nio would bring an event loop and async calls to bridge back to them.
///
/// Statements are prepared once per connection and reused; parameters are SQLite's (`?`,
/// `?N`, rewritten by `PostgresPlaceholders`) and sent as text, and results come back as text.
/// A lock wait longer than the busy timeout (`lock_timeout`) fails with `isBusy`, as SQLite's
/// busy timeout does.
public final class PostgresConnection {
    /// The advisory lock every write transaction takes first: the key of
    /// `messenger_write_lock()` (migrations/postgres/001), written out because the Migrator
    /// takes it before 001 exists. It orders writers as SQLite's `BEGIN IMMEDIATE` does, so that
    /// message ids and event seqs become visible in the order they were drawn
    /// (migrations/postgres/README.md, "The event order").
    static let writeLockKey: Int64 = 7_886_761_135_174_153_317

    let handle: OpaquePointer
    /// The busy timeout this connection was opened with.
    public let busyTimeoutMilliseconds: Int32
    /// Called after every commit of a `write` transaction.
    public var afterCommit: (() -> Void)?
    /// The name each SQL text was prepared under.
    private var prepared: [String: String] = [:]
    /// Channels the current write transaction notifies as it commits (`notifyAtCommit`).
    private var notifications: Set<String> = []
    /// The lock wait of the next write transactions (`setBusyWait`), at most the busy timeout.
    private var busyWaitMilliseconds: Int32
    /// Inside `transaction`: a lost connection then fails the transaction, never reconnects
    /// halfway through it.
    private var inTransaction = false

    /// Connects to `url` (`postgres://user:password@host:port/database?…`, anything libpq
    /// takes). The password is never logged: errors name the URL without it.
    public init(url: String, busyTimeoutMilliseconds: Int32 = Connection.defaultBusyTimeoutMilliseconds) throws(StorageError) {
        guard let handle = PQconnectdb(url) else {
            throw StorageError(code: SQLITE_CANTOPEN, message: "libpq could not allocate a connection")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = Self.text(PQerrorMessage(handle))
            PQfinish(handle)
            throw StorageError(code: SQLITE_CANTOPEN,
                               message: "cannot connect to \(Configuration.withoutPassword(url)): \(message)", sqlState: "08006")
        }
        self.handle = handle
        self.busyTimeoutMilliseconds = max(busyTimeoutMilliseconds, 1)
        busyWaitMilliseconds = self.busyTimeoutMilliseconds
        // Notices (a `CREATE … IF NOT EXISTS` that skipped) would go to stderr.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        try configureSession()
    }

    /// The session's settings, at connect and after a reconnect.
    private func configureSession() throws(StorageError) {
        // Times as the Store writes them, whatever the server's settings; a lock wait longer
        // than the busy timeout fails (55P03, busy), as SQLite's busy timeout does.
        let sql = "SET TIME ZONE 'UTC'; SET lock_timeout = \(busyTimeoutMilliseconds)"
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        try check(result, sql: sql)
    }

    /// A connection the server dropped (its restart, a failover, a network cut) is opened
    /// again before the next statement outside a transaction, so that a thread's connection
    /// recovers by itself; its prepared statements and settings are made again. Inside a
    /// transaction the loss fails the transaction instead (its statements so far are gone).
    ///
    /// A server that ended the connection while it was idle (a restart, `pg_terminate_backend`)
    /// has said so on the socket; reading what is there first (non-blocking) finds that out
    /// before a statement is sent, so that the statement goes to a new connection instead of
    /// failing.
    private func reconnectIfLost() throws(StorageError) {
        guard !inTransaction else { return }
        // The server's goodbye (an error message), then the end of the stream: each takes a read.
        var reads = 0
        while reads < 3, PQstatus(handle) == CONNECTION_OK, PQtransactionStatus(handle) == PQTRANS_IDLE,
              Self.readable(PQsocket(handle)) {
            _ = PQconsumeInput(handle)
            reads += 1
        }
        guard PQstatus(handle) == CONNECTION_BAD else { return }
        PQreset(handle)
        guard PQstatus(handle) == CONNECTION_OK else {
            throw StorageError(code: SQLITE_IOERR, message: "lost the connection to PostgreSQL and cannot reconnect: "
                               + Self.text(PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines),
                               sqlState: "08006")
        }
        prepared.removeAll()
        try configureSession()
    }

    /// Whether `descriptor` has something to read now (data, or the peer's close).
    private static func readable(_ descriptor: Int32) -> Bool {
        guard descriptor >= 0 else { return false }
        var wait = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&wait, 1, 0) > 0
    }

    deinit {
        PQfinish(handle)
    }

    /// How long the next statements wait for a lock held by another transaction (at least
    /// 1 ms), as `Connection.setBusyWait` does on SQLite.
    /// Costs no round trip: a shorter wait is sent with the next write transaction's BEGIN
    /// (`SET LOCAL`, which ends with it), where the write lock is waited for.
    public func setBusyWait(milliseconds: Int32) {
        busyWaitMilliseconds = min(max(milliseconds, 1), busyTimeoutMilliseconds)
    }

    /// Runs one or more SQL statements with no parameters (migrations, settings).
    public func execute(_ sql: String) throws(StorageError) {
        try reconnectIfLost()
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        try check(result, sql: sql)
    }

    /// Runs `sql` with `values` bound to its parameters, in order; prepared once per connection.
    public func query(_ sql: String, _ values: [SQLValue] = []) throws(StorageError) -> PostgresResult {
        try reconnectIfLost()
        let name = try preparedName(sql)
        let texts: [String?] = values.map(Self.text(of:))
        // libpq takes parameters as C strings: one with a NUL would be cut there, silently.
        // PostgreSQL's text cannot hold NUL at all (the API refuses it before it gets here).
        guard !texts.contains(where: { $0?.utf8.contains(0) == true }) else {
            throw StorageError(code: SQLITE_MISMATCH, message: "text with a NUL character cannot be stored in PostgreSQL",
                               sql: sql, sqlState: "22021")
        }
        let result = Self.withCStrings(texts) { pointers in
            PQexecPrepared(handle, name, Int32(pointers.count), pointers, nil, nil, 0)
        }
        do {
            try check(result, sql: sql)
        } catch {
            PQclear(result)
            throw error
        }
        return PostgresResult(handle: result!)
    }

    /// Runs a statement and returns the number of rows it changed.
    @discardableResult
    public func run(_ sql: String, _ values: [SQLValue] = []) throws(StorageError) -> Int {
        try query(sql, values).changes
    }

    /// Runs a query and maps each row.
    public func rows<T>(_ sql: String, _ values: [SQLValue] = [], _ map: (PostgresRow) throws(StorageError) -> T)
        throws(StorageError) -> [T] {
        let result = try query(sql, values)
        var mapped: [T] = []
        mapped.reserveCapacity(result.count)
        for index in 0..<result.count {
            mapped.append(try map(PostgresRow(result: result, index: Int32(index))))
        }
        return mapped
    }

    /// Runs a query and maps its first row, if any.
    public func first<T>(_ sql: String, _ values: [SQLValue] = [], _ map: (PostgresRow) throws(StorageError) -> T)
        throws(StorageError) -> T? {
        let result = try query(sql, values)
        guard result.count > 0 else { return nil }
        return try map(PostgresRow(result: result, index: 0))
    }

    /// Runs `body` in a write transaction that holds the write lock from its first statement,
    /// in READ COMMITTED: each later statement sees every commit of the writers before it, as
    /// a SQLite writer does.
    @discardableResult
    public func write<T>(_ body: () throws -> T) throws -> T {
        notifications.removeAll()
        defer { notifications.removeAll() }
        // One round trip to begin (BEGIN, the wait, the lock) and one to end (the NOTIFYs,
        // queued by PostgreSQL and delivered when, and only if, the transaction commits, in
        // commit order: a listener woken by one reads the commit; then COMMIT).
        let wait = busyWaitMilliseconds < busyTimeoutMilliseconds
            ? "SET LOCAL lock_timeout = \(busyWaitMilliseconds); " : ""
        let result = try transaction(begin: "BEGIN; \(wait)SELECT pg_advisory_xact_lock(\(Self.writeLockKey))",
                                     commit: { notifications.sorted().map { "NOTIFY \($0); " }.joined() + "COMMIT" },
                                     body)
        afterCommit?()
        return result
    }

    /// Makes the current write transaction `NOTIFY channel` as it commits, once however often
    /// this is called (a `PostgresListener` hears it).
    public func notifyAtCommit(_ channel: String) {
        notifications.insert(channel)
    }

    /// Runs `body` in a read transaction whose statements share one snapshot, as SQLite's
    /// read transactions do.
    public func read<T>(_ body: () throws -> T) throws -> T {
        try transaction(begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", commit: { "COMMIT" }, body)
    }

    /// Ends whatever a caller left open (a transaction never committed) and returns what it
    /// was, as `Connection.endLeftovers` does.
    public func endLeftovers() -> [String] {
        switch PQtransactionStatus(handle) {
        case PQTRANS_INTRANS, PQTRANS_INERROR:
            try? execute("ROLLBACK")
            return ["BEGIN (a transaction never committed)"]
        default:
            return []
        }
    }

    /// Runs a transaction's first statement; a connection found lost there is opened again and
    /// the statement sent once more (nothing of the transaction ran).
    private func start(_ begin: String) throws(StorageError) {
        do {
            try execute(begin)
        } catch {
            guard error.isUnavailable, PQstatus(handle) == CONNECTION_BAD else { throw error }
            try execute(begin)
        }
    }

    private func transaction<T>(begin: String, commit: () -> String, _ body: () throws -> T) throws -> T {
        do {
            try start(begin)
            inTransaction = true
            defer { inTransaction = false }
            let result = try body()
            try execute(commit())
            return result
        } catch {
            // Also after a BEGIN whose lock wait timed out: the transaction is open, failed.
            if PQtransactionStatus(handle) != PQTRANS_IDLE { try? execute("ROLLBACK") }
            throw error
        }
    }

    private func preparedName(_ sql: String) throws(StorageError) -> String {
        if let name = prepared[sql] { return name }
        let name = "s\(prepared.count + 1)"
        let result = PQprepare(handle, name, PostgresPlaceholders.translate(sql), 0, nil)
        defer { PQclear(result) }
        try check(result, sql: sql)
        prepared[sql] = name
        return name
    }

    private func check(_ result: OpaquePointer?, sql: String) throws(StorageError) {
        guard let result else {
            throw StorageError(code: SQLITE_IOERR, message: Self.text(PQerrorMessage(handle)), sql: sql, sqlState: "08006")
        }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY: return
        default:
            // An error of libpq's own (the connection went away mid-call) has no SQLSTATE.
            guard let state = Self.field(result, "C") else {
                let lost = PQstatus(handle) == CONNECTION_BAD
                throw StorageError(code: lost ? SQLITE_IOERR : SQLITE_ERROR,
                                   message: Self.text(PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines),
                                   sql: sql, sqlState: lost ? "08006" : "XX000")
            }
            throw StorageError(code: Self.sqliteCode(forSQLState: state), message: Self.message(result, state: state),
                               sql: sql, sqlState: state)
        }
    }

    private static func field(_ result: OpaquePointer, _ code: Character) -> String? {
        PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
    }

    /// The error's primary message alone, as SQLite's say what failed and never with what
    /// values: PostgreSQL's DETAIL repeats a duplicate key's value, and a data error (class 22)
    /// quotes its input after a colon, either of which could be a message's text or a token.
    private static func message(_ result: OpaquePointer, state: String) -> String {
        let primary = field(result, "M") ?? "unknown error"
        guard state.hasPrefix("22"), let colon = primary.firstIndex(of: ":") else { return primary }
        return String(primary[..<colon])
    }

    /// The SQLite result code of the same kind as a SQLSTATE, which is what callers ask of a
    /// `StorageError`: a lock wait over the timeout, a deadlock or a serialization failure is
    /// busy (try again later: 503), a full disk is full (507), a constraint is a constraint.
    static func sqliteCode(forSQLState state: String) -> Int32 {
        switch state {
        case "55P03", "40P01", "40001", "57014": SQLITE_BUSY
        case "53100": SQLITE_FULL
        case _ where state.hasPrefix("23"): SQLITE_CONSTRAINT
        // The connection failed, or the server is shutting down or ended it (57P01-57P05).
        case _ where state.hasPrefix("08") || state.hasPrefix("57P"): SQLITE_IOERR
        default: SQLITE_ERROR
        }
    }

    private static func text(of value: SQLValue) -> String? {
        switch value {
        case .null: nil
        case .integer(let number): String(number)
        case .real(let number): "\(number)"
        case .text(let text): text
        }
    }

    private static func text(_ pointer: UnsafePointer<CChar>?) -> String {
        pointer.map { String(cString: $0) } ?? ""
    }

    /// Calls `body` with NUL-terminated copies of `texts` (NULL for nil), valid during the call.
    private static func withCStrings<R>(_ texts: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
        let copies = texts.map { $0.map { strdup($0) } ?? nil }
        defer { copies.forEach { free($0) } }
        return body(copies.map { $0.map { UnsafePointer($0) } })
    }
}

@available(*, unavailable)
extension PostgresConnection: Sendable {}

/// The rows of one statement, as text; freed with the last reference.
public final class PostgresResult {
    let handle: OpaquePointer

    init(handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        PQclear(handle)
    }

    /// Rows returned.
    public var count: Int { Int(PQntuples(handle)) }

    /// Rows an INSERT, UPDATE or DELETE changed (0 for other statements).
    public var changes: Int { Int(String(cString: PQcmdTuples(handle))) ?? 0 }
}

@available(*, unavailable)
extension PostgresResult: Sendable {}

/// One row of a `PostgresResult`, read as a `SQLiteRow` is: integers, doubles and text, nil
/// for NULL. A boolean column (`t`/`f`) reads as the integer 1 or 0, as SQLite's conditions do.
public struct PostgresRow {
    let result: PostgresResult
    let index: Int32

    private func bytes(_ column: Int32) -> UnsafeBufferPointer<UInt8>? {
        guard PQgetisnull(result.handle, index, column) == 0, let value = PQgetvalue(result.handle, index, column)
        else { return nil }
        let count = Int(PQgetlength(result.handle, index, column))
        return UnsafeBufferPointer(start: UnsafeRawPointer(value).assumingMemoryBound(to: UInt8.self), count: count)
    }

    public func optionalInt(_ column: Int32) -> Int64? {
        guard let bytes = bytes(column) else { return nil }
        if bytes.count == 1, bytes[0] == UInt8(ascii: "t") { return 1 }
        if bytes.count == 1, bytes[0] == UInt8(ascii: "f") { return 0 }
        return Int64(String(decoding: bytes, as: UTF8.self))
    }

    public func int(_ column: Int32) -> Int64 {
        optionalInt(column) ?? 0
    }

    public func double(_ column: Int32) -> Double {
        bytes(column).flatMap { Double(String(decoding: $0, as: UTF8.self)) } ?? 0
    }

    public func optionalString(_ column: Int32) -> String? {
        bytes(column).map { String(decoding: $0, as: UTF8.self) }
    }

    public func string(_ column: Int32) -> String {
        optionalString(column) ?? ""
    }

    /// The integers of a comma-separated list (a `string_agg` of ids); empty for NULL.
    public func integers(_ column: Int32) -> [Int64] {
        bytes(column).map(IDList.integers) ?? []
    }
}
