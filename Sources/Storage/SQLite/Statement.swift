import CSQLite

/// A prepared statement. Owned by one `Connection` and, like it, used by one thread at a time.
public final class Statement {
    let handle: OpaquePointer
    let sql: String
    private unowned let connection: Connection

    init(connection: Connection, sql: String) throws(StorageError) {
        var handle: OpaquePointer?
        let code = sqlite3_prepare_v3(connection.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &handle, nil)
        guard code == SQLITE_OK, let handle else {
            throw StorageError(connection: connection.handle, code: code, sql: sql)
        }
        self.handle = handle
        self.sql = sql
        self.connection = connection
    }

    deinit {
        sqlite3_finalize(handle)
    }

    /// Resets the statement and binds `values` to its parameters, in order.
    @discardableResult
    public func bind(_ values: [SQLValue]) throws(StorageError) -> Statement {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let code: Int32
            switch value {
            case .null: code = sqlite3_bind_null(handle, index)
            case .integer(let number): code = sqlite3_bind_int64(handle, index, number)
            case .real(let number): code = sqlite3_bind_double(handle, index, number)
            // The byte count, not -1: text may contain NUL (JSON's \u0000), which -1 would cut at.
            case .text(let text):
                code = sqlite3_bind_text64(handle, index, text, sqlite3_uint64(text.utf8.count), csqlite_transient(),
                                           UInt8(SQLITE_UTF8))
            }
            guard code == SQLITE_OK else { throw error(code) }
        }
        return self
    }

    /// Advances to the next row; `false` when done.
    public func step() throws(StorageError) -> Bool {
        let code = sqlite3_step(handle)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            sqlite3_reset(handle)
            throw error(code)
        }
    }

    /// Ends a query that was stepped by hand before its last row.
    public func reset() {
        sqlite3_reset(handle)
    }

    /// Runs a statement that returns no rows; returns how many rows it changed.
    @discardableResult
    public func run(_ values: [SQLValue] = []) throws(StorageError) -> Int {
        try bind(values)
        while try step() {}
        sqlite3_reset(handle)
        return connection.changes
    }

    /// Runs a query and maps each row.
    public func rows<T>(_ values: [SQLValue] = [], _ map: (SQLiteRow) throws(StorageError) -> T) throws(StorageError) -> [T] {
        try bind(values)
        defer { sqlite3_reset(handle) }
        var result: [T] = []
        let row = SQLiteRow(statement: self)
        while try step() {
            result.append(try map(row))
        }
        return result
    }

    /// Runs a query and maps its first row, if any.
    public func first<T>(_ values: [SQLValue] = [], _ map: (SQLiteRow) throws(StorageError) -> T) throws(StorageError) -> T? {
        try bind(values)
        defer { sqlite3_reset(handle) }
        guard try step() else { return nil }
        return try map(SQLiteRow(statement: self))
    }

    private func error(_ code: Int32) -> StorageError {
        StorageError(connection: connection.handle, code: code, sql: sql)
    }
}

/// A value bound to a statement parameter.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)

    public init(_ value: Int64?) { self = value.map(SQLValue.integer) ?? .null }

    /// Ids as a JSON array, for `SQL.Fragment.ids` and `idRows`: one parameter for a list of
    /// any length, and one prepared statement for every length.
    public static func idList(_ ids: some Sequence<Int64>) -> SQLValue {
        .text("[" + ids.map(String.init).joined(separator: ",") + "]")
    }
    public init(_ value: String?) { self = value.map(SQLValue.text) ?? .null }
}

/// The current row of a statement; valid only inside the mapping closure.
public struct SQLiteRow {
    let statement: Statement

    public func int(_ column: Int32) -> Int64 {
        sqlite3_column_int64(statement.handle, column)
    }

    public func double(_ column: Int32) -> Double {
        sqlite3_column_double(statement.handle, column)
    }

    public func optionalInt(_ column: Int32) -> Int64? {
        sqlite3_column_type(statement.handle, column) == SQLITE_NULL ? nil : int(column)
    }

    public func string(_ column: Int32) -> String {
        optionalString(column) ?? ""
    }

    /// The integers of a comma-separated list (a `group_concat` of ids), read from the
    /// column's bytes without building a string; empty for NULL.
    public func integers(_ column: Int32) -> [Int64] {
        guard let text = sqlite3_column_text(statement.handle, column) else { return [] }
        return IDList.integers(UnsafeBufferPointer(start: text, count: Int(sqlite3_column_bytes(statement.handle, column))))
    }

    public func optionalString(_ column: Int32) -> String? {
        guard let text = sqlite3_column_text(statement.handle, column) else { return nil }
        let count = Int(sqlite3_column_bytes(statement.handle, column))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }
}

/// The integers of a comma-separated list (an aggregate of ids, `SQL.Fragment.joinedIDs`),
/// read from a column's bytes without building a string.
enum IDList {
    static func integers(_ bytes: UnsafeBufferPointer<UInt8>) -> [Int64] {
        var result: [Int64] = []
        var value: Int64 = 0
        var digits = 0
        var negative = false
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                value = value &* 10 &+ Int64(byte &- UInt8(ascii: "0"))
                digits += 1
            case UInt8(ascii: "-") where digits == 0:
                negative = true
            default:
                if digits > 0 { result.append(negative ? -value : value) }
                value = 0
                digits = 0
                negative = false
            }
        }
        if digits > 0 { result.append(negative ? -value : value) }
        return result
    }
}
