/// The database a `Store` runs on: one SQLite connection or one PostgreSQL connection, owned,
/// like either, by one thread.
///
/// Everything the Store asks of a database goes through here: statements (`statement`),
/// transactions (`write`, `read`), the busy timeout, and the insert that returns its new id.
/// SQL that is the same in both dialects is written once as a `String`; SQL with a fragment
/// that differs is an `SQL` value, written once with its fragments named (`SQL.Fragment`).
public enum Database {
    case sqlite(Connection)
    case postgres(PostgresConnection)

    /// Which of the two this is.
    public var dialect: SQLDialect {
        switch self {
        case .sqlite: .sqlite
        case .postgres: .postgres
        }
    }

    /// The SQLite connection, nil on PostgreSQL: for what only SQLite has (checkpoints, pragmas).
    public var sqliteConnection: Connection? {
        if case .sqlite(let connection) = self { return connection }
        return nil
    }

    /// A statement for `sql`, the same text in both dialects; prepared once per connection.
    public func statement(_ sql: String) throws(StorageError) -> Query {
        switch self {
        case .sqlite(let connection): Query(.sqlite(try connection.statement(sql)))
        case .postgres(let connection): Query(.postgres(connection, sql))
        }
    }

    /// A statement for `sql` in this database's dialect.
    public func statement(_ sql: SQL) throws(StorageError) -> Query {
        switch self {
        case .sqlite(let connection): Query(.sqlite(try connection.statement(sql.sqlite)))
        case .postgres(let connection): Query(.postgres(connection, sql.postgres))
        }
    }

    /// Runs one or more statements with no parameters (settings, tests' fixtures).
    public func execute(_ sql: String) throws(StorageError) {
        switch self {
        case .sqlite(let connection): try connection.execute(sql)
        case .postgres(let connection): try connection.execute(sql)
        }
    }

    /// Runs `insert` (an INSERT that may insert nothing, `ON CONFLICT DO NOTHING`) and returns
    /// the `column` of the row it inserted, nil when it inserted none. SQLite reads the rowid
    /// the insert made (on its hottest inserts a `RETURNING` clause cost measurably: it builds
    /// a temporary table per row); PostgreSQL returns it (`RETURNING column`).
    public func insert(_ insert: String, _ values: [SQLValue], returning column: String) throws(StorageError) -> Int64? {
        switch self {
        case .sqlite(let connection):
            let inserted = try connection.statement(insert).run(values)
            return inserted == 1 ? connection.lastInsertRowID : nil
        case .postgres(let connection):
            return try connection.first(insert + " RETURNING " + column, values) { $0.int(0) }
        }
    }

    /// Runs `body` in a write transaction that holds the database's write lock from its start
    /// (SQLite's `BEGIN IMMEDIATE`; on PostgreSQL the advisory write lock): writers queue, and
    /// each sees every commit before it.
    @discardableResult
    public func write<T>(_ body: () throws -> T) throws -> T {
        switch self {
        case .sqlite(let connection): try connection.write(body)
        case .postgres(let connection): try connection.write(body)
        }
    }

    /// Runs `body` in a read transaction, so that its queries see one snapshot.
    public func read<T>(_ body: () throws -> T) throws -> T {
        switch self {
        case .sqlite(let connection): try connection.read(body)
        case .postgres(let connection): try connection.read(body)
        }
    }

    /// Ends whatever a caller left open (a statement, a transaction) and returns what it was.
    public func endLeftovers() -> [String] {
        switch self {
        case .sqlite(let connection): connection.endLeftovers()
        case .postgres(let connection): connection.endLeftovers()
        }
    }

    /// The busy timeout the connection was opened with.
    public var busyTimeoutMilliseconds: Int32 {
        switch self {
        case .sqlite(let connection): connection.busyTimeoutMilliseconds
        case .postgres(let connection): connection.busyTimeoutMilliseconds
        }
    }

    /// How long the next statements wait for a lock another connection holds (at least 1 ms).
    public func setBusyWait(milliseconds: Int32) {
        switch self {
        case .sqlite(let connection): connection.setBusyWait(milliseconds: milliseconds)
        case .postgres(let connection): connection.setBusyWait(milliseconds: milliseconds)
        }
    }

    /// Runs `body` after every commit of a `write` transaction.
    public func setAfterCommit(_ body: (() -> Void)?) {
        switch self {
        case .sqlite(let connection): connection.afterCommit = body
        case .postgres(let connection): connection.afterCommit = body
        }
    }
}

@available(*, unavailable)
extension Database: Sendable {}

/// The two SQL dialects the Store speaks.
public enum SQLDialect: Sendable {
    case sqlite
    case postgres
}

/// A prepared statement of either database, ready to run with its values.
public struct Query {
    enum Target {
        case sqlite(Statement)
        /// PostgreSQL prepares by SQL text, once per connection (`PostgresConnection.query`).
        case postgres(PostgresConnection, String)
    }

    private let target: Target

    init(_ target: Target) {
        self.target = target
    }

    /// Runs a statement that returns no rows; returns how many rows it changed.
    @discardableResult
    public func run(_ values: [SQLValue] = []) throws(StorageError) -> Int {
        switch target {
        case .sqlite(let statement): try statement.run(values)
        case .postgres(let connection, let sql): try connection.run(sql, values)
        }
    }

    /// Runs a query and maps each row.
    public func rows<T>(_ values: [SQLValue] = [], _ map: (Row) throws(StorageError) -> T) throws(StorageError) -> [T] {
        switch target {
        case .sqlite(let statement): try statement.rows(values) { (row) throws(StorageError) in try map(.sqlite(row)) }
        case .postgres(let connection, let sql):
            try connection.rows(sql, values) { (row) throws(StorageError) in try map(.postgres(row)) }
        }
    }

    /// Runs a query and maps its first row, if any.
    public func first<T>(_ values: [SQLValue] = [], _ map: (Row) throws(StorageError) -> T) throws(StorageError) -> T? {
        switch target {
        case .sqlite(let statement): try statement.first(values) { (row) throws(StorageError) in try map(.sqlite(row)) }
        case .postgres(let connection, let sql):
            try connection.first(sql, values) { (row) throws(StorageError) in try map(.postgres(row)) }
        }
    }

    /// Runs a query and calls `body` with each row, in order, until it returns false: for a
    /// reader that stops early, or folds rows without keeping them.
    public func scan(_ values: [SQLValue] = [], _ body: (Row) throws(StorageError) -> Bool) throws(StorageError) {
        switch target {
        case .sqlite(let statement):
            try statement.bind(values)
            defer { statement.reset() }
            let row = SQLiteRow(statement: statement)
            while try statement.step() {
                guard try body(.sqlite(row)) else { return }
            }
        case .postgres(let connection, let sql):
            let result = try connection.query(sql, values)
            for index in 0..<result.count {
                guard try body(.postgres(PostgresRow(result: result, index: Int32(index)))) else { return }
            }
        }
    }
}

@available(*, unavailable)
extension Query: Sendable {}

/// The current row of a `Query`, read the same way on either database; valid only inside the
/// closure it is handed to.
public enum Row {
    case sqlite(SQLiteRow)
    case postgres(PostgresRow)

    public func int(_ column: Int32) -> Int64 {
        switch self {
        case .sqlite(let row): row.int(column)
        case .postgres(let row): row.int(column)
        }
    }

    public func double(_ column: Int32) -> Double {
        switch self {
        case .sqlite(let row): row.double(column)
        case .postgres(let row): row.double(column)
        }
    }

    public func optionalInt(_ column: Int32) -> Int64? {
        switch self {
        case .sqlite(let row): row.optionalInt(column)
        case .postgres(let row): row.optionalInt(column)
        }
    }

    public func string(_ column: Int32) -> String {
        optionalString(column) ?? ""
    }

    public func optionalString(_ column: Int32) -> String? {
        switch self {
        case .sqlite(let row): row.optionalString(column)
        case .postgres(let row): row.optionalString(column)
        }
    }

    /// The integers of a comma-separated list (`SQL.Fragment.joinedIDs`); empty for NULL.
    public func integers(_ column: Int32) -> [Int64] {
        switch self {
        case .sqlite(let row): row.integers(column)
        case .postgres(let row): row.integers(column)
        }
    }
}
