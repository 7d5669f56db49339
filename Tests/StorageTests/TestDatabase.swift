import Domain
import Foundation
import Storage
import Synchronization

/// A temporary directory holding one on-disk database, removed when the test ends.
///
/// With `STORE_TESTS_ON_POSTGRES=1` (and the throwaway cluster of
/// `Tests/postgres/swift_tests.sh`), `migratedStore()` is a PostgreSQL database of its own
/// instead, migrated with `migrations/postgres`: the Store suites then run on PostgreSQL, and
/// the few checks of what only SQLite has (FTS5's segments) are skipped.
final class TestDatabase {
    static let onPostgres = ProcessInfo.processInfo.environment["STORE_TESTS_ON_POSTGRES"] == "1"

    /// The repository's `migrations/sqlite/`, found from this file's location.
    static let migrationsDirectory = Migrator.sqliteDirectory(under: URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("migrations").path)

    let directory: String
    let path: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.path + "/storage-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = directory + "/messenger.db"
    }

    deinit {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A fresh connection; the database is not migrated.
    func connection(busyTimeoutMilliseconds: Int32 = Connection.defaultBusyTimeoutMilliseconds) throws -> Connection {
        try Connection(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
    }

    private var postgres: PostgresTestDatabase?

    /// Where `migratedStore()`'s database is, for a second connection (another process's).
    var location: DatabaseLocation { postgres.map { .postgres(url: $0.url) } ?? .sqlite(path: path) }

    /// Another connection to `migratedStore()`'s database, as another process would open it.
    func otherStore() throws -> Store {
        try location.openStore()
    }

    /// Applies the repository's migrations and opens a store the way the servers do.
    func migratedStore() throws -> Store {
        if Self.onPostgres {
            let database = try postgres ?? PostgresTestDatabase()
            postgres = database
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("migrations").path
            try Migrator(directory: Migrator.directory(for: PostgresConnection.self, under: root))
                .migrate(database.connection())
            return try Store(postgresURL: database.url)
        }
        let connection = try connection()
        try Migrator(directory: Self.migrationsDirectory).migrate(connection)
        return try Store(path: path)
    }
}

extension Store {
    /// `SELECT count(*) FROM table`.
    func count(_ table: String, where condition: String = "true") throws -> Int64 {
        try database.statement("SELECT count(*) FROM \(table) WHERE \(condition)").first { $0.int(0) } ?? -1
    }

    /// Users called `names`, created through login.
    func users(_ names: String...) throws -> [User] {
        try names.map { try login(username: $0) }
    }

    func send(_ content: String?, from sender: Int64, to chatID: Int64, files: [MessageDraft.FileReference] = [],
              nonce: String? = nil) throws -> PostedMessage {
        try post(OutgoingMessage(senderID: sender, chatID: chatID, draft: MessageDraft(content: content, files: files, nonce: nonce)))
    }

    func upload(by uploaderID: Int64, name: String, kind: StoredFile.Kind = .picture, size: Int64 = 10) throws -> StoredFile {
        try insertFile(uploaderID: uploaderID, kind: kind, storedName: name, filename: "client-" + name,
                       mimeType: kind == .picture ? "image/png" : nil, sizeBytes: size)
    }
}

/// Matches `2026-02-19T12:00:00Z`.
func isRFC3339UTC(_ text: String) -> Bool {
    text.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z/) != nil
}

/// A value shared between test threads, behind a lock.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) {
        mutex = Mutex(value)
    }

    func withLock<T: Sendable, E: Error>(_ body: (inout Value) throws(E) -> T) throws(E) -> T {
        try mutex.withLock { (value: inout sending Value) throws(E) -> T in try body(&value) }
    }
}
