import Domain

/// The messenger's data, on one database connection (SQLite or PostgreSQL): every query the
/// processes run.
///
/// This is the narrow interface the design asks for: callers see users, chats, messages and
/// files, never SQL. The queries are written once for both databases (`Database`, `SQL`);
/// search alone has a body per dialect. Like its connection, a `Store` belongs to one thread.
public final class Store {
    public let database: Database

    /// Opens the SQLite database at `path` and refuses a schema this build does not know.
    public convenience init(path: String, synchronous: DatabaseSynchronous = .normal,
                            metrics: DatabaseMetrics = .disabled) throws {
        let connection = try Connection(path: path, synchronous: synchronous, metrics: metrics)
        try Migrator.checkSchema(connection)
        self.init(database: .sqlite(connection))
    }

    /// Connects to the PostgreSQL database at `url` and refuses a schema this build does not
    /// know.
    public convenience init(postgresURL url: String,
                            busyTimeoutMilliseconds: Int32 = Connection.defaultBusyTimeoutMilliseconds) throws {
        let connection = try PostgresConnection(url: url, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        try Migrator.checkSchema(connection)
        self.init(database: .postgres(connection))
    }

    /// Opens the SQLite database for a process's one writing connection
    /// (`configureForWriting`), telling `checkpointer` of each commit.
    public static func writer(path: String, autocheckpointPages: Int32, checkpointer: Checkpointer,
                              synchronous: DatabaseSynchronous = .normal,
                              metrics: DatabaseMetrics = .disabled) throws -> Store {
        let connection = try Connection(path: path, synchronous: synchronous, metrics: metrics)
        try Migrator.checkSchema(connection)
        try connection.configureForWriting(autocheckpointPages: autocheckpointPages)
        connection.afterCommit = { checkpointer.noteCommit() }
        return Store(database: .sqlite(connection))
    }

    public init(database: Database) {
        self.database = database
    }

    public convenience init(connection: Connection) {
        self.init(database: .sqlite(connection))
    }
}

@available(*, unavailable)
extension Store: Sendable {}
