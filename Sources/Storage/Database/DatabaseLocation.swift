import Domain

/// Where the database is: what each thread needs to open a connection of its own (a `Store`
/// belongs to one thread). From `DATABASE_URL`: `sqlite:path` or `postgres://…`.
public enum DatabaseLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(url: String)

    public init(_ configuration: Configuration) {
        if let url = configuration.postgresURL {
            self = .postgres(url: url)
        } else {
            self = .sqlite(path: configuration.databasePath)
        }
    }

    /// A new connection as a `Store`, refusing a schema this build does not know.
    /// `synchronous` and `metrics` are SQLite's (PostgreSQL's durability is the server's
    /// `synchronous_commit`).
    public func openStore(synchronous: DatabaseSynchronous = .normal, metrics: DatabaseMetrics = .disabled) throws -> Store {
        switch self {
        case .sqlite(let path): try Store(path: path, synchronous: synchronous, metrics: metrics)
        case .postgres(let url): try Store(postgresURL: url)
        }
    }

    /// For logs and errors: the path, or the URL without its password.
    public var description: String {
        switch self {
        case .sqlite(let path): path
        case .postgres(let url): Configuration.withoutPassword(url)
        }
    }
}
