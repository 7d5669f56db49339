import CSQLite
import Foundation

/// A failed SQLite or PostgreSQL call: the result code, the database's message and the SQL,
/// never bound values, so message text and tokens stay out of logs.
///
/// A PostgreSQL error carries its SQLSTATE and, in `code`, the SQLite result code of the same
/// kind (`PostgresConnection`), so that callers ask `isBusy` or `isDiskFull` of either.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    /// The extended result code.
    public let code: Int32
    /// PostgreSQL's SQLSTATE (`23505`, `55P03`, …); nil for SQLite.
    public let sqlState: String?
    public let message: String
    public let sql: String?
    /// The `errno` of the system call that failed, for I/O errors (0 if none).
    public let systemErrno: Int32

    init(code: Int32, message: String, sql: String? = nil, systemErrno: Int32 = 0, sqlState: String? = nil) {
        self.code = code
        self.sqlState = sqlState
        self.message = message
        self.sql = sql
        self.systemErrno = systemErrno
    }

    init(connection: OpaquePointer?, code: Int32, sql: String? = nil) {
        let message = connection.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
            ?? String(cString: sqlite3_errstr(code))
        self.init(code: sqlite3_extended_errcode(connection) == 0 ? code : sqlite3_extended_errcode(connection),
                  message: message, sql: sql, systemErrno: connection.map { sqlite3_system_errno($0) } ?? 0)
    }

    /// The primary result code (`SQLITE_BUSY`, `SQLITE_CONSTRAINT`, …).
    public var primaryCode: Int32 { code & 0xFF }

    /// Another connection held the write lock for longer than the busy timeout.
    public var isBusy: Bool { primaryCode == SQLITE_BUSY || primaryCode == SQLITE_LOCKED }

    /// The disk (or the filesystem's quota) is full: `SQLITE_FULL`, or an I/O error that
    /// SQLite got from a write the operating system refused for lack of space.
    public var isDiskFull: Bool {
        primaryCode == SQLITE_FULL
            || (primaryCode == SQLITE_IOERR && (systemErrno == ENOSPC || systemErrno == EDQUOT))
    }

    /// The lock wait a caller had was spent before its turn at the connection came.
    public static func busyBeforeStart(waitedMilliseconds: Int) -> StorageError {
        StorageError(code: SQLITE_BUSY, message: "database is locked (waited \(waitedMilliseconds) ms for the writer)")
    }

    public var isConstraintViolation: Bool { primaryCode == SQLITE_CONSTRAINT }

    /// PostgreSQL could not be reached, or ended the connection (SQLSTATE class 08, 57P): the
    /// database is down for now (503), not the request wrong. The connection reopens itself
    /// before its next statement.
    public var isUnavailable: Bool {
        guard let sqlState else { return false }
        return sqlState.hasPrefix("08") || sqlState.hasPrefix("57P")
    }

    public var description: String {
        var text = sqlState.map { "PostgreSQL error \($0): \(message)" } ?? "SQLite error \(code): \(message)"
        if let sql { text += " — in \(sql.prefix(200))" }
        return text
    }
}
