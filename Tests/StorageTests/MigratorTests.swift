import Foundation
import Storage
import Testing

@Suite struct MigratorTests {
    private let database: TestDatabase

    init() throws {
        database = try TestDatabase()
    }

    private var migrator: Migrator {
        get throws { try Migrator(directory: TestDatabase.migrationsDirectory) }
    }

    private func tables(_ connection: Connection) throws -> Set<String> {
        Set(try connection.statement("SELECT name FROM sqlite_master WHERE type = 'table'").rows { $0.string(0) })
    }

    @Test func readsTheRepositoryMigrations() throws {
        let migrations = try migrator.migrations
        #expect(migrations.first?.version == 1)
        #expect(migrations.first?.name == "001_initial.sql")
        #expect(migrations.last?.version == Migrator.schemaVersion)
        #expect(migrations.map(\.version) == migrations.map(\.version).sorted())
    }

    @Test func appliesOnceAndRecords() throws {
        let connection = try database.connection()
        // Versions may have gaps (each branch numbers its own), so the expectation is the files'.
        let every = try migrator.migrations.map(\.version)
        #expect(try migrator.migrate(connection) == every)
        #expect(try Migrator.currentVersion(connection) == Migrator.schemaVersion)

        let recorded = try connection.statement("SELECT version, name, applied_at FROM schema_migrations ORDER BY version").rows {
            ($0.int(0), $0.string(1), $0.string(2))
        }
        #expect(recorded.map(\.0) == every)
        #expect(recorded.map(\.1) == (try migrator.migrations).map(\.name))
        #expect(recorded.prefix(2).map(\.1) == ["001_initial.sql", "002_events.sql"])
        #expect(recorded.allSatisfy { isRFC3339UTC($0.2) })

        let expected: Set<String> = ["schema_migrations", "users", "files", "chats", "chat_members", "messages", "message_files",
                                     "events", "event_log", "reactions"]
        #expect(expected.isSubset(of: try tables(connection)))
    }

    @Test func rerunningAppliesNothing() throws {
        let connection = try database.connection()
        try migrator.migrate(connection)
        #expect(try migrator.migrate(connection) == [])
        // A second connection, as another process would have, also finds nothing to do.
        #expect(try migrator.migrate(database.connection()) == [])
        #expect(try connection.statement("SELECT count(*) FROM schema_migrations").first { $0.int(0) }
                    == Int64(try migrator.migrations.count))
    }

    @Test func checkSchemaAcceptsTheCurrentVersion() throws {
        let connection = try database.connection()
        try migrator.migrate(connection)
        #expect(throws: Never.self) { try Migrator.checkSchema(connection) }
        #expect(throws: Never.self) { try Store(path: database.path) }
    }

    @Test func checkSchemaRefusesANewerSchema() throws {
        let connection = try database.connection()
        try migrator.migrate(connection)
        try connection.execute("INSERT INTO schema_migrations (version, name) VALUES (999, '999_future.sql')")
        let error = try #require(throws: MigrationError.self) { try Migrator.checkSchema(connection) }
        #expect(error.description.contains("999"))
        #expect(error.description.contains("newer"))
        #expect(throws: MigrationError.self) { try Store(path: database.path) }
        // Migrating does not paper over it either.
        #expect(throws: MigrationError.self) { try migrator.migrate(connection) }
    }

    @Test func checkSchemaRefusesAnOlderSchema() throws {
        let connection = try database.connection()
        let error = try #require(throws: MigrationError.self) { try Migrator.checkSchema(connection) }
        #expect(error.description.contains("migrate"))
        #expect(throws: MigrationError.self) { try Store(path: database.path) }
    }

    @Test func aFailingMigrationLeavesNothingBehind() throws {
        let directory = database.directory + "/bad-migrations"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "CREATE TABLE half_done (x INTEGER); INSERT INTO no_such_table VALUES (1);"
            .write(toFile: directory + "/001_broken.sql", atomically: true, encoding: .utf8)
        let connection = try database.connection()
        #expect(throws: (any Error).self) { try Migrator(directory: directory).migrate(connection) }
        #expect(!(try tables(connection)).contains("half_done"))
        #expect(try Migrator.currentVersion(connection) == 0)
    }

    @Test func refusesMigrationsBeyondWhatThisBuildKnows() throws {
        let directory = database.directory + "/future-migrations"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for migration in try migrator.migrations {
            try FileManager.default.copyItem(atPath: TestDatabase.migrationsDirectory + "/" + migration.name,
                                             toPath: directory + "/" + migration.name)
        }
        let beyond = String(format: "%03d_later.sql", Migrator.schemaVersion + 1)
        try "CREATE TABLE later (x INTEGER);".write(toFile: directory + "/" + beyond, atomically: true, encoding: .utf8)
        let connection = try database.connection()
        #expect(throws: MigrationError.self) { try Migrator(directory: directory).migrate(connection) }
        #expect(try Migrator.currentVersion(connection) == 0)
    }

    @Test func refusesBadMigrationDirectories() throws {
        #expect(throws: MigrationError.self) { try Migrator(directory: database.directory + "/missing") }

        let unnumbered = database.directory + "/unnumbered"
        try FileManager.default.createDirectory(atPath: unnumbered, withIntermediateDirectories: true)
        try "SELECT 1;".write(toFile: unnumbered + "/initial.sql", atomically: true, encoding: .utf8)
        #expect(throws: MigrationError.self) { try Migrator(directory: unnumbered) }

        let duplicate = database.directory + "/duplicate"
        try FileManager.default.createDirectory(atPath: duplicate, withIntermediateDirectories: true)
        try "SELECT 1;".write(toFile: duplicate + "/001_a.sql", atomically: true, encoding: .utf8)
        try "SELECT 1;".write(toFile: duplicate + "/1_b.sql", atomically: true, encoding: .utf8)
        #expect(throws: MigrationError.self) { try Migrator(directory: duplicate) }

        let empty = database.directory + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        #expect(throws: MigrationError.self) { try Migrator(directory: empty).migrate(database.connection()) }
    }
}
