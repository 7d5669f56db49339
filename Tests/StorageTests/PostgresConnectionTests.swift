import Foundation
@testable import Storage
import Testing

/// A database of its own on the throwaway cluster that `Tests/postgres/swift_tests.sh` starts
/// (`PG_DATABASE_URL`, `PG_ADMIN_URL`), dropped when the test ends. Without that cluster these
/// tests do not run; scripts/test always runs them with one.
final class PostgresTestDatabase {
    static let environment = ProcessInfo.processInfo.environment
    static var available: Bool { environment["PG_DATABASE_URL"] != nil && environment["PG_ADMIN_URL"] != nil }

    let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    let url: String
    private let admin: PostgresConnection

    init() throws {
        let shared = try #require(Self.environment["PG_DATABASE_URL"])
        admin = try PostgresConnection(url: try #require(Self.environment["PG_ADMIN_URL"]))
        // As start_throwaway_postgres creates the shared one: what migrations/postgres/001 expects.
        try admin.execute("""
            CREATE DATABASE \(name) OWNER messenger TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'
            """)
        url = shared.replacingOccurrences(of: "@/messenger?", with: "@/\(name)?")
        #expect(url != shared, "PG_DATABASE_URL names no database 'messenger': \(shared)")
    }

    deinit {
        try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    func connection(busyTimeoutMilliseconds: Int32 = Connection.defaultBusyTimeoutMilliseconds) throws -> PostgresConnection {
        try PostgresConnection(url: url, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
    }
}

/// libpq under the Store's connection contract: values, statements, transactions, errors.
@Suite(.enabled(if: PostgresTestDatabase.available, "needs the throwaway cluster of Tests/postgres/swift_tests.sh"))
struct PostgresConnectionTests {
    let database: PostgresTestDatabase

    init() throws {
        database = try PostgresTestDatabase()
    }

    @Test func valuesGoAndComeBackAsTheStoreBindsAndReadsThem() throws {
        let connection = try database.connection()
        let row = try #require(try connection.first(
            "SELECT ?::bigint, ?::text, ?::double precision, ?::text IS NULL, ?::text, ?::bigint, NULL::text",
            [.integer(Int64.min), .text("héllo € \"quoted\" 'single'"), .real(0.1), .null, .text(""), .integer(-7)]
        ) { row in
            (row.int(0), row.string(1), row.double(2), row.int(3), row.optionalString(4), row.optionalInt(5),
             row.optionalString(6), row.optionalInt(6))
        })
        #expect(row.0 == Int64.min)
        #expect(row.1 == "héllo € \"quoted\" 'single'")
        #expect(row.2 == 0.1)
        #expect(row.3 == 1, "a boolean reads as 1 or 0")
        #expect(row.4 == "", "empty text is not NULL")
        #expect(row.5 == -7)
        #expect(row.6 == nil && row.7 == nil)
    }

    @Test func statementsReportTheRowsTheyChangedAndArePreparedOnce() throws {
        let connection = try database.connection()
        try connection.execute("CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
        for id in 1...3 {
            #expect(try connection.run("INSERT INTO notes (id, body) VALUES (?, ?)", [.integer(Int64(id)), .text("n\(id)")]) == 1)
        }
        #expect(try connection.run("UPDATE notes SET body = body || ?1 WHERE id >= ?2", [.text("!"), .integer(2)]) == 2)
        #expect(try connection.run("DELETE FROM notes WHERE id = ?", [.integer(99)]) == 0)
        let bodies = try connection.rows("SELECT body FROM notes ORDER BY id") { $0.string(0) }
        #expect(bodies == ["n1", "n2!", "n3!"])
        // One prepared statement per SQL text, however often it runs: the insert, the update,
        // the delete, the select and this count.
        let prepared = try connection.first("SELECT count(*) FROM pg_prepared_statements") { $0.int(0) }
        #expect(prepared == 5)
    }

    @Test func aConstraintIsReportedByKindWithoutTheBoundValues() throws {
        let connection = try database.connection()
        try connection.execute("CREATE TABLE names (name TEXT PRIMARY KEY)")
        try connection.run("INSERT INTO names VALUES (?)", [.text("secret-value")])
        let error = try #require(throws: StorageError.self) {
            try connection.run("INSERT INTO names VALUES (?)", [.text("secret-value")])
        }
        #expect(error.isConstraintViolation && error.sqlState == "23505")
        #expect(!error.isBusy && !error.isDiskFull)
        #expect(!error.description.contains("secret-value"), "\(error)")
        #expect(error.description.contains("PostgreSQL error 23505"))
        // A value PostgreSQL cannot read is named by its type, not quoted.
        let badInput = try #require(throws: StorageError.self) {
            try connection.first("SELECT ?::bigint", [.text("token-abc")]) { $0.int(0) }
        }
        #expect(badInput.sqlState == "22P02" && !badInput.description.contains("token-abc"), "\(badInput)")
    }

    @Test func aWriterWaitsForTheWriteLockNoLongerThanItsBusyTimeout() throws {
        let holder = try database.connection()
        let waiter = try database.connection(busyTimeoutMilliseconds: 150)
        let held = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) let unsafeHolder = holder
        Thread.detachNewThread {
            try? unsafeHolder.write {
                held.signal()
                Thread.sleep(forTimeInterval: 1.5)
            }
            done.signal()
        }
        held.wait()
        let start = Date()
        let error = try #require(throws: StorageError.self) { try waiter.write { } }
        let waited = Date().timeIntervalSince(start)
        #expect(error.isBusy && error.sqlState == "55P03", "\(error)")
        #expect(waited >= 0.1 && waited < 1.2, "waited \(waited) s")
        done.wait()
        // Free again: the waiter writes at once, its connection in a clean state.
        #expect(try waiter.write { 1 } == 1)
    }

    @Test func aFailedWriteLeavesNothingAndTheConnectionUsable() throws {
        let connection = try database.connection()
        try connection.execute("CREATE TABLE kept (id BIGINT PRIMARY KEY)")
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try connection.write {
                try connection.run("INSERT INTO kept VALUES (1)")
                throw Refused()
            }
        }
        #expect(throws: StorageError.self) {
            try connection.write { try connection.run("INSERT INTO kept VALUES (2), (2)") }
        }
        #expect(try connection.first("SELECT count(*) FROM kept") { $0.int(0) } == 0)
        try connection.write { try connection.run("INSERT INTO kept VALUES (3)") }
        #expect(try connection.rows("SELECT id FROM kept") { $0.int(0) } == [3])
        #expect(connection.endLeftovers().isEmpty)
    }

    @Test func aReadTransactionSeesOneSnapshot() throws {
        let reader = try database.connection()
        let writer = try database.connection()
        try writer.execute("CREATE TABLE seen (id BIGINT PRIMARY KEY)")
        try writer.run("INSERT INTO seen VALUES (1)")
        let counts = try reader.read { () throws -> (Int64?, Int64?) in
            let before = try reader.first("SELECT count(*) FROM seen") { $0.int(0) }
            try writer.write { try writer.run("INSERT INTO seen VALUES (2)") }
            return (before, try reader.first("SELECT count(*) FROM seen") { $0.int(0) })
        }
        #expect(counts.0 == 1 && counts.1 == 1)
        #expect(try reader.first("SELECT count(*) FROM seen") { $0.int(0) } == 2)
        #expect(throws: StorageError.self) { try reader.read { try reader.run("INSERT INTO seen VALUES (3)") } }
    }

    @Test func leftoversAreEndedAndNamed() throws {
        let connection = try database.connection()
        try connection.execute("BEGIN")
        #expect(connection.endLeftovers() == ["BEGIN (a transaction never committed)"])
        #expect(connection.endLeftovers().isEmpty)
    }

    @Test func theMigratorAppliesThePostgresDialectOnceAndChecksIt() throws {
        let connection = try database.connection()
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("migrations").path
        let migrator = try Migrator(directory: Migrator.directory(for: PostgresConnection.self, under: root))
        #expect(throws: MigrationError.self) { try Migrator.checkSchema(connection) }
        let applied = try migrator.migrate(connection)
        #expect(applied == Array(1...Migrator.schemaVersion))
        #expect(try migrator.migrate(connection).isEmpty)
        #expect(throws: Never.self) { try Migrator.checkSchema(connection) }
        let names = try connection.rows("SELECT name FROM schema_migrations ORDER BY version") { $0.string(0) }
        #expect(names == migrator.migrations.map(\.name))
        // The schema the Store will run on: the write lock function and the event counter.
        #expect(try connection.first("SELECT seq FROM event_counter") { $0.int(0) } == 0)
        try connection.write { try connection.run("SELECT messenger_write_lock()") }
    }

    @Test func aConnectionThatCannotBeMadeSaysSoWithoutThePassword() {
        let error = #expect(throws: StorageError.self) {
            try PostgresConnection(url: "postgres://someone:hunter2@/nothing?host=/nonexistent-socket-dir")
        }
        #expect(error.map { !$0.description.contains("hunter2") && $0.description.contains("cannot connect") } == true)
    }
}
