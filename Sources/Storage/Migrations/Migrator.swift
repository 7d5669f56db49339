import Foundation

/// Applies the numbered plain-SQL files of one dialect's folder (`migrations/sqlite/001_name.sql`,
/// …), each once, in order, in its own transaction, recorded in `schema_migrations`.
///
/// `migrations/` holds a folder per database: `sqlite/` and `postgres/`, version for version
/// the same schema (Tests/postgres/check_migrations.sh compares the two lists).
///
/// Only `FCGIApp migrate` applies migrations; every serving process calls `checkSchema` at
/// start-up and refuses to run against a schema it was not built for.
public struct Migrator {
    /// The schema version this build's queries are written for: the highest migration it knows.
    /// Versions need not be contiguous: `migrate` applies each file newer than the database in
    /// order, whatever numbers lie between.
    public static let schemaVersion: Int64 = 9

    public struct Migration: Sendable, Equatable {
        public let version: Int64
        public let name: String
        public let sql: String
    }

    public let migrations: [Migration]

    public init(migrations: [Migration]) {
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// The folder of SQLite's migrations under `MIGRATIONS_DIR`.
    public static func sqliteDirectory(under root: String) -> String {
        directory(for: Connection.self, under: root)
    }

    /// The folder of a dialect's migrations under `MIGRATIONS_DIR`.
    public static func directory(for dialect: any MigrationTarget.Type, under root: String) -> String {
        root + "/" + dialect.migrationsFolder
    }

    /// Reads `NNN_name.sql` files from `directory` (one dialect's folder).
    public init(directory: String) throws {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw MigrationError("cannot read migrations directory \(directory)")
        }
        var migrations: [Migration] = []
        for name in names where name.hasSuffix(".sql") {
            guard let version = Int64(name.prefix(while: \.isNumber)), version > 0 else {
                throw MigrationError("migration file \(name) does not start with a version number")
            }
            guard let sql = FileManager.default.contents(atPath: directory + "/" + name) else {
                throw MigrationError("cannot read migration \(name)")
            }
            if migrations.contains(where: { $0.version == version }) {
                throw MigrationError("two migrations have version \(version)")
            }
            migrations.append(Migration(version: version, name: name, sql: String(decoding: sql, as: UTF8.self)))
        }
        self.init(migrations: migrations)
    }

    /// Applies every migration newer than the database; returns the versions applied.
    @discardableResult
    public func migrate(_ database: some MigrationTarget) throws -> [Int64] {
        try database.ensureMigrationsTable()
        guard let latest = migrations.last?.version else { throw MigrationError("no migrations found") }
        guard latest == Self.schemaVersion else {
            throw MigrationError("the migrations directory goes up to version \(latest) but this build knows version \(Self.schemaVersion)")
        }
        let current = try database.appliedMigrationVersion()
        if current > latest {
            throw MigrationError("the database schema is at version \(current), newer than the newest migration here (\(latest)); run a newer build")
        }
        var applied: [Int64] = []
        for migration in migrations {
            try database.inWriteTransaction {
                // Re-read inside the write lock: another process may have migrated meanwhile.
                guard try database.appliedMigrationVersion() < migration.version else { return }
                try database.apply(migration)
                applied.append(migration.version)
            }
        }
        return applied
    }

    /// Throws unless the database is at exactly the version this build knows.
    public static func checkSchema(_ database: some MigrationTarget) throws {
        try database.ensureMigrationsTable()
        let current = try database.appliedMigrationVersion()
        if current > schemaVersion {
            throw MigrationError("the database schema is at version \(current), newer than this build knows (\(schemaVersion)); run a newer build")
        }
        if current < schemaVersion {
            throw MigrationError("the database schema is at version \(current) but this build needs \(schemaVersion); run `FCGIApp migrate` first")
        }
    }

    public static func currentVersion(_ database: some MigrationTarget) throws -> Int64 {
        try database.appliedMigrationVersion()
    }
}

/// A database the `Migrator` applies one dialect's files to: SQLite's `Connection`,
/// `PostgresConnection`.
public protocol MigrationTarget {
    /// The folder of this dialect's files under `MIGRATIONS_DIR`.
    static var migrationsFolder: String { get }
    /// Creates `schema_migrations` unless it is there.
    func ensureMigrationsTable() throws
    /// The newest version recorded in `schema_migrations`, 0 for none.
    func appliedMigrationVersion() throws -> Int64
    /// Runs `body` in a transaction that holds the database's write lock.
    func inWriteTransaction(_ body: () throws -> Void) throws
    /// Runs the migration's SQL and records it, inside that transaction.
    func apply(_ migration: Migrator.Migration) throws
}

extension Connection: MigrationTarget {
    public static let migrationsFolder = "sqlite"

    public func ensureMigrationsTable() throws {
        try execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    INTEGER PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
            )
            """)
    }

    public func appliedMigrationVersion() throws -> Int64 {
        try statement("SELECT coalesce(max(version), 0) FROM schema_migrations").first { $0.int(0) } ?? 0
    }

    public func inWriteTransaction(_ body: () throws -> Void) throws {
        try write(body)
    }

    public func apply(_ migration: Migrator.Migration) throws {
        try execute(migration.sql)
        try statement("INSERT INTO schema_migrations (version, name) VALUES (?, ?)")
            .run([.integer(migration.version), .text(migration.name)])
    }
}

extension PostgresConnection: MigrationTarget {
    public static let migrationsFolder = "postgres"

    /// `applied_at` is not `messenger_time_now()`, which 001 creates; the same text, though.
    public func ensureMigrationsTable() throws {
        try execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    BIGINT PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at TEXT NOT NULL
                    DEFAULT to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            )
            """)
    }

    public func appliedMigrationVersion() throws -> Int64 {
        try first("SELECT coalesce(max(version), 0) FROM schema_migrations") { $0.int(0) } ?? 0
    }

    public func inWriteTransaction(_ body: () throws -> Void) throws {
        try write(body)
    }

    public func apply(_ migration: Migrator.Migration) throws {
        try execute(migration.sql)
        try run("INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                [.integer(migration.version), .text(migration.name)])
    }
}

/// Migrations cannot run or the schema does not match this build.
public struct MigrationError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
