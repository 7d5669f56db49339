import Foundation
import Synchronization
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
        try other.database.execute("PRAGMA wal_autocheckpoint = 100000")
        checkpointer.start { error in Issue.record("checkpoint failed: \(error)") }
        defer { checkpointer.stop() }
        #expect(try growth(of: database, writingThrough: other, wait: 0.5) == 0)
    }

    /// Readers that always overlap keep the WAL from ever restarting by itself; past
    /// `restartBytes` a RESTART checkpoint waits them out, so the WAL stops growing.
    @Test func restartsAWALThatOverlappingReadersKeepGrowing() throws {
        for (restart, bounded) in [(Int64(1) << 40, false), (Int64(256) << 10, true)] {
            let database = try TestDatabase()
            let writer = try database.connection()
            try writer.execute("PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (x BLOB)")
            let checkpointer = Checkpointer(path: database.path, interval: 0.005, restartBytes: restart)
            writer.afterCommit = { checkpointer.noteCommit() }
            checkpointer.start { error in Issue.record("checkpoint failed: \(error)") }
            let stop = StopFlag()
            let path = database.path
            let readers = (0..<2).map { offset in
                Thread {
                    guard let reader = try? Connection(path: path) else { return }
                    Thread.sleep(forTimeInterval: 0.001 * Double(offset))
                    while !stop.value.load(ordering: .relaxed) {
                        _ = try? reader.read {
                            _ = try reader.statement("SELECT count(*) FROM t").first { $0.int(0) }
                            Thread.sleep(forTimeInterval: 0.002)
                        }
                    }
                }
            }
            readers.forEach { $0.start() }
            for index in 0..<1_500 {
                try writer.write { try writer.statement("INSERT INTO t VALUES (randomblob(3000))").run() }
                // A steady writer, not a burst the 5 ms rounds cannot see between.
                if index % 10 == 0 { Thread.sleep(forTimeInterval: 0.002) }
            }
            stop.value.store(true, ordering: .relaxed)
            checkpointer.stop()
            Thread.sleep(forTimeInterval: 0.05)
            let wal = try FileManager.default.attributesOfItem(atPath: database.path + "-wal")[.size] as? Int ?? 0
            // 1,500 rows of 3 KB with their index and header pages: 18 MB if it never restarts.
            #expect((wal < 4 << 20) == bounded, "restartBytes \(restart): WAL \(wal) bytes")
        }
    }
}

private final class StopFlag: Sendable {
    let value = Atomic<Bool>(false)
}
