import Domain

/// The messenger's data, on one SQLite connection: every query both processes run.
///
/// This is the narrow interface the design asks for: callers see users, chats, messages and
/// files, never SQL, so another database can stand behind the same methods. Like its
/// connection, a `Store` belongs to one thread.
public final class Store {
    public let connection: Connection

    /// Opens the database at `path` and refuses a schema this build does not know.
    public convenience init(path: String, synchronous: DatabaseSynchronous = .normal,
                            metrics: DatabaseMetrics = .disabled) throws {
        let connection = try Connection(path: path, synchronous: synchronous, metrics: metrics)
        try Migrator.checkSchema(connection)
        self.init(connection: connection)
    }

    /// Opens the database for a process's one writing connection (`configureForWriting`),
    /// telling `checkpointer` of each commit.
    public static func writer(path: String, autocheckpointPages: Int32, checkpointer: Checkpointer,
                              synchronous: DatabaseSynchronous = .normal,
                              metrics: DatabaseMetrics = .disabled) throws -> Store {
        let store = try Store(path: path, synchronous: synchronous, metrics: metrics)
        try store.connection.configureForWriting(autocheckpointPages: autocheckpointPages)
        store.connection.afterCommit = { checkpointer.noteCommit() }
        return store
    }

    public init(connection: Connection) {
        self.connection = connection
    }
}

@available(*, unavailable)
extension Store: Sendable {}
