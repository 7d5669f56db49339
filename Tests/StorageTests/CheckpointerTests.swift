import Foundation
import Storage
import Testing

@Suite struct CheckpointerTests {
    /// Pages in the database file proper (what checkpoints have copied out of the WAL).
    private func databaseFileSize(_ database: TestDatabase) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: database.path)[.size] as? Int ?? -1
    }

    /// Writes a few hundred messages through `store` (its own commits, well under any
    /// automatic checkpoint threshold) and returns how much the database file grew within
    /// `wait` seconds.
    private func growth(of database: TestDatabase, writingThrough store: Store, wait: TimeInterval) throws -> Int {
        let users = try store.users("ann", "ben")
        let chatID = try store.initiateDirectChat(userID: users[0].id, peerID: users[1].id).chatID
        let before = try databaseFileSize(database)
        for index in 0..<300 {
            _ = try store.send(String(repeating: "x", count: 500) + "\(index)", from: users[0].id, to: chatID)
        }
        Thread.sleep(forTimeInterval: wait)
        return try databaseFileSize(database) - before
    }

    @Test func copiesTheWALAfterItsProcessCommits() throws {
        let database = try TestDatabase()
        _ = try database.migratedStore()
        let checkpointer = Checkpointer(path: database.path, interval: 0.01)
        let store = try Store.writer(path: database.path, autocheckpointPages: 100_000, checkpointer: checkpointer)
        checkpointer.start { error in Issue.record("checkpoint failed: \(error)") }
        defer { checkpointer.stop() }
        #expect(try growth(of: database, writingThrough: store, wait: 0.5) > 0)
    }

    @Test func leavesTheWALAloneWhenItsProcessDidNotCommit() throws {
        let database = try TestDatabase()
        _ = try database.migratedStore()
        let checkpointer = Checkpointer(path: database.path, interval: 0.01)
        // Written by a connection the checkpointer is not told about: another process's.
        let other = try Store(path: database.path)
        try other.connection.execute("PRAGMA wal_autocheckpoint = 100000")
        checkpointer.start { error in Issue.record("checkpoint failed: \(error)") }
        defer { checkpointer.stop() }
        #expect(try growth(of: database, writingThrough: other, wait: 0.5) == 0)
    }
}
