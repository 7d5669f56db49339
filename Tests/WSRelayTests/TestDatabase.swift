import Foundation
import Storage

/// A fresh, migrated on-disk WAL database in a temporary directory.
struct TestDatabase {
    let directory: String
    var path: String { directory + "/messenger.db" }

    init() throws {
        directory = NSTemporaryDirectory() + "wsrelay-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let migrations = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("migrations").path
        try Migrator(directory: Migrator.sqliteDirectory(under: migrations)).migrate(Connection(path: path))
    }

    func store() throws -> Store {
        try Store(path: path)
    }
}
