import Foundation

/// Applies the numbered plain-SQL files of `migrations/` (`001_name.sql`, …), each once, in
/// order, in its own transaction, recorded in `schema_migrations`.
///
/// Only `FCGIApp migrate` applies migrations; every serving process calls `checkSchema` at
/// start-up and refuses to run against a schema it was not built for.
public struct Migrator {
    /// The schema version this build's queries are written for: the highest migration it knows.
    /// Versions need not be contiguous: `migrate` applies each file newer than the database in
    /// order, whatever numbers lie between.
    public static let schemaVersion: Int64 = 8

    public struct Migration: Sendable, Equatable {
        public let version: Int64
        public let name: String
        public let sql: String
    }

    public let migrations: [Migration]

    public init(migrations: [Migration]) {
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// Reads `NNN_name.sql` files from `directory`.
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
    public func migrate(_ connection: Connection) throws -> [Int64] {
        try Self.ensureTable(connection)
        guard let latest = migrations.last?.version else { throw MigrationError("no migrations found") }
        guard latest == Self.schemaVersion else {
            throw MigrationError("the migrations directory goes up to version \(latest) but this build knows version \(Self.schemaVersion)")
        }
        let current = try Self.currentVersion(connection)
        if current > latest {
            throw MigrationError("the database schema is at version \(current), newer than the newest migration here (\(latest)); run a newer build")
        }
        var applied: [Int64] = []
        for migration in migrations {
            try connection.write {
                // Re-read inside the write lock: another process may have migrated meanwhile.
                guard try Self.currentVersion(connection) < migration.version else { return }
                try connection.execute(migration.sql)
                try connection.statement("INSERT INTO schema_migrations (version, name) VALUES (?, ?)")
                    .run([.integer(migration.version), .text(migration.name)])
                applied.append(migration.version)
            }
        }
        return applied
    }

    /// Throws unless the database is at exactly the version this build knows.
    public static func checkSchema(_ connection: Connection) throws {
        try Self.ensureTable(connection)
        let current = try currentVersion(connection)
        if current > schemaVersion {
            throw MigrationError("the database schema is at version \(current), newer than this build knows (\(schemaVersion)); run a newer build")
        }
        if current < schemaVersion {
            throw MigrationError("the database schema is at version \(current) but this build needs \(schemaVersion); run `FCGIApp migrate` first")
        }
    }

    public static func currentVersion(_ connection: Connection) throws -> Int64 {
        try connection.statement("SELECT coalesce(max(version), 0) FROM schema_migrations").first { $0.int(0) } ?? 0
    }

    private static func ensureTable(_ connection: Connection) throws {
        try connection.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    INTEGER PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
            )
            """)
    }
}

/// Migrations cannot run or the schema does not match this build.
public struct MigrationError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
