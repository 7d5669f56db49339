import Domain
import Foundation
import Storage
import Synchronization
import Testing

@Suite struct ConnectionTests {
    private let database: TestDatabase

    init() throws {
        database = try TestDatabase()
    }

    @Test func journalModeIsWAL() throws {
        let store = try database.migratedStore()
        #expect(try store.database.statement("PRAGMA journal_mode").first { $0.string(0) } == "wal")
        #expect(FileManager.default.fileExists(atPath: database.path + "-wal"))
    }

    @Test func foreignKeysAreOn() throws {
        let store = try database.migratedStore()
        #expect(try store.database.statement("PRAGMA foreign_keys").first { $0.int(0) } == 1)
        let error = try #require(throws: StorageError.self) {
            try store.database.statement("INSERT INTO chat_members (chat_id, user_id) VALUES (?, ?)").run([.integer(99), .integer(99)])
        }
        #expect(error.isConstraintViolation)
    }

    /// A query stepped and then abandoned pins its connection's snapshot: a user created on
    /// another connection stays invisible there until `endLeftovers` ends it (and names it).
    @Test func endLeftoversEndsAPinnedSnapshot() throws {
        let reader = try database.migratedStore()
        let writer = try Store(path: database.path)
        _ = try writer.login(username: "first")
        #expect(reader.database.sqliteConnection!.endLeftovers().isEmpty)
        let scan = try reader.database.sqliteConnection!.statement("SELECT id FROM users")
        try scan.bind([])
        #expect(try scan.step())
        _ = try writer.login(username: "second")
        #expect(try reader.user(username: "second") == nil)
        #expect(reader.database.sqliteConnection!.endLeftovers() == ["SELECT id FROM users"])
        #expect(try reader.user(username: "second") != nil)
        #expect(reader.database.sqliteConnection!.endLeftovers().isEmpty)
        // An explicit transaction left open is rolled back.
        try reader.database.sqliteConnection!.execute("BEGIN")
        _ = try reader.user(username: "first")
        #expect(reader.database.sqliteConnection!.endLeftovers().count == 1)
        #expect(try reader.database.sqliteConnection!.statement("SELECT 1").first { $0.int(0) } == 1)
        try reader.database.sqliteConnection!.execute("BEGIN")
        try reader.database.sqliteConnection!.execute("COMMIT")
    }

    /// The busy handler waits for about the configured time, then gives up with SQLITE_BUSY.
    @Test func busyTimeoutIsHonoured() throws {
        _ = try database.migratedStore()
        let holder = try database.connection()
        try holder.execute("BEGIN IMMEDIATE")
        defer { try? holder.execute("ROLLBACK") }
        let waiter = try database.connection(busyTimeoutMilliseconds: 250)
        let start = Date()
        let error = try #require(throws: StorageError.self) { try waiter.execute("BEGIN IMMEDIATE") }
        let waited = Date().timeIntervalSince(start)
        #expect(error.isBusy)
        #expect(waited >= 0.2 && waited < 2, "waited \(waited) s")
    }

    /// DB_SYNCHRONOUS: NORMAL (1) unless FULL (2) is asked for.
    @Test func synchronousFollowsTheSetting() throws {
        _ = try database.migratedStore()
        let normal = try Connection(path: database.path)
        #expect(try normal.statement("PRAGMA synchronous").first { $0.int(0) } == 1)
        let full = try Connection(path: database.path, synchronous: .full)
        #expect(try full.statement("PRAGMA synchronous").first { $0.int(0) } == 2)
        let store = try Store(path: database.path, synchronous: .full)
        #expect(try store.database.statement("PRAGMA synchronous").first { $0.int(0) } == 2)
    }

    /// Writers queued on the shared store behind one waiting at a held lock share its
    /// timeout: eight of them fail within about one timeout, not eight.
    @Test func queuedWritersShareTheBusyTimeout() throws {
        let store = try database.migratedStore()
        let writer = SerializedStore(Store(connection: try database.connection(busyTimeoutMilliseconds: 400)))
        let holder = try database.connection()
        try holder.execute("BEGIN IMMEDIATE")
        defer { try? holder.execute("ROLLBACK") }
        let failures = Atomic<Int>(0)
        let start = Date()
        // Eight threads of their own (concurrentPerform would run only as many at once as
        // there are cores, and the later ones would queue only after the first had failed).
        let finished = DispatchGroup()
        for index in 0..<8 {
            finished.enter()
            Thread.detachNewThread {
                defer { finished.leave() }
                do {
                    _ = try writer.perform { try $0.login(username: "queued\(index)") }
                } catch let error as StorageError where error.isBusy {
                    failures.add(1, ordering: .relaxed)
                } catch {}
            }
        }
        finished.wait()
        let waited = Date().timeIntervalSince(start)
        #expect(failures.load(ordering: .relaxed) == 8)
        // One timeout is 0.4 s; eight in a row would be 3.2 s. The margin is for a loaded machine.
        #expect(waited >= 0.35 && waited < 2.4, "waited \(waited) s")
        #expect(try store.count("users") == 0)
    }

    @Test func writeRollsBackWhenItsBodyThrows() throws {
        let store = try database.migratedStore()
        struct Refusal: Error {}
        #expect(throws: Refusal.self) {
            try store.database.write {
                try store.database.statement("INSERT INTO users (username) VALUES (?)").run([.text("ghost")])
                throw Refusal()
            }
        }
        #expect(try store.count("users") == 0)
        // The connection is usable afterwards: no transaction was left open.
        _ = try store.login(username: "alice")
        #expect(try store.count("users") == 1)
    }

    @Test func storageErrorsCarryTheSQLButNotTheBoundValues() throws {
        let store = try database.migratedStore()
        _ = try store.login(username: "secret-name")
        let error = try #require(throws: StorageError.self) {
            try store.database.statement("INSERT INTO users (username) VALUES (?)").run([.text("secret-name")])
        }
        #expect(error.isConstraintViolation)
        #expect(error.sql == "INSERT INTO users (username) VALUES (?)")
        #expect(error.description.contains("INSERT INTO users"))
        #expect(!error.description.contains("secret-name"))
    }

    @Test func badSQLIsAnError() throws {
        let connection = try database.connection()
        #expect(throws: StorageError.self) { try connection.statement("SELEC nonsense") }
        #expect(throws: StorageError.self) { try connection.execute("CREATE TABLE") }
    }

    @Test func theDirectPairIsUniqueInTheDatabaseItself() throws {
        let store = try database.migratedStore()
        let users = try store.users("alice", "bob")
        let insert = "INSERT INTO chats (chat_type, creator_id, direct_low, direct_high) VALUES ('direct', ?, ?, ?)"
        try store.database.statement(insert).run([.integer(users[0].id), .integer(users[0].id), .integer(users[1].id)])
        let error = try #require(throws: StorageError.self) {
            try store.database.statement(insert).run([.integer(users[1].id), .integer(users[0].id), .integer(users[1].id)])
        }
        #expect(error.isConstraintViolation)
        // The pair must be ordered, so the reversed pair cannot sneak in either.
        #expect(throws: StorageError.self) {
            try store.database.statement(insert).run([.integer(users[1].id), .integer(users[1].id), .integer(users[0].id)])
        }
    }
}
