import Domain
import Foundation
import Storage
import Testing

/// Two connections to one database file, each on a thread of its own, as FastCGI workers
/// and the relay are.
@Suite struct ContentionTests {
    private let database: TestDatabase

    init() throws {
        database = try TestDatabase()
        _ = try database.migratedStore()
    }

    /// Runs `body` on a new thread; the returned semaphore is signalled when it is done.
    private func onThread(_ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            body()
            done.signal()
        }
        thread.start()
        return done
    }

    @Test func aWriterWaitsForAnotherConnectionsImmediateTransaction() throws {
        let holder = try database.connection()
        try holder.execute("BEGIN IMMEDIATE")
        try holder.statement("INSERT INTO users (username) VALUES (?)").run([.text("first")])

        let path = database.path
        let started = DispatchSemaphore(value: 0)
        let outcome = Locked<Result<Date, any Error>?>(nil)
        let finished = onThread {
            do {
                let store = Store(connection: try Connection(path: path))
                started.signal()
                _ = try store.login(username: "second")
                outcome.withLock { $0 = .success(Date()) }
            } catch {
                started.signal()
                outcome.withLock { $0 = .failure(error) }
            }
        }
        started.wait()
        // The second writer is blocked on the write lock, not failed.
        #expect(finished.wait(timeout: .now() + .milliseconds(400)) == .timedOut)
        #expect(outcome.withLock { $0 == nil })

        let committing = Date()
        try holder.execute("COMMIT")
        #expect(finished.wait(timeout: .now() + 5) == .success)
        // It succeeded, and only once the first transaction had committed.
        let finishedAt = try #require(try outcome.withLock { try $0?.get() })
        #expect(finishedAt >= committing)

        let store = try Store(path: path)
        #expect(try store.user(username: "first") != nil)
        #expect(try store.user(username: "second") != nil)
    }

    @Test func aWriterGivesUpWithBusyAfterItsTimeout() throws {
        let holder = try database.connection()
        try holder.execute("BEGIN IMMEDIATE")
        defer { try? holder.execute("ROLLBACK") }

        let waiter = Store(connection: try database.connection(busyTimeoutMilliseconds: 100))
        let begin = Date()
        let error = try #require(throws: StorageError.self) { try waiter.login(username: "late") }
        #expect(error.isBusy)
        #expect(Date().timeIntervalSince(begin) >= 0.09)
    }

    @Test func readersAreNotBlockedByAWriter() throws {
        let store = try Store(path: database.path)
        _ = try store.login(username: "visible")
        let holder = try database.connection()
        try holder.execute("BEGIN IMMEDIATE")
        try holder.statement("INSERT INTO users (username) VALUES (?)").run([.text("uncommitted")])
        defer { try? holder.execute("ROLLBACK") }

        // WAL: the reader sees the last commit at once, and not the open transaction.
        #expect(try store.user(username: "visible") != nil)
        #expect(try store.user(username: "uncommitted") == nil)
    }

    @Test func concurrentInitiatesOfOnePairYieldOneChat() throws {
        let setup = try Store(path: database.path)
        let pairs = try (0..<20).map { index in
            try (setup.login(username: "left\(index)").id, setup.login(username: "right\(index)").id)
        }
        let path = database.path
        let results = Locked<[Int: [InitiatedChat]]>([:])
        let failures = Locked<[String]>([])
        let gate = DispatchGroup()
        gate.enter()

        // Two threads, each with its own connection, initiate every pair from opposite sides
        // at the same moment.
        let threads = (0..<2).map { side in
            onThread {
                do {
                    let store = try Store(path: path)
                    gate.wait()
                    for (index, pair) in pairs.enumerated() {
                        let chat = side == 0
                            ? try store.initiateDirectChat(userID: pair.0, peerID: pair.1)
                            : try store.initiateDirectChat(userID: pair.1, peerID: pair.0)
                        results.withLock { $0[index, default: []].append(chat) }
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        gate.leave()
        for thread in threads { #expect(thread.wait(timeout: .now() + 30) == .success) }

        #expect(failures.withLock { $0 } == [])
        let outcomes = results.withLock { $0 }
        #expect(outcomes.count == pairs.count)
        for (index, chats) in outcomes {
            #expect(chats.count == 2)
            #expect(Set(chats.map(\.chatID)).count == 1, "pair \(index) got two chats: \(chats)")
            #expect(chats.filter(\.created).count == 1, "pair \(index): \(chats)")
        }
        #expect(try setup.count("chats", where: "chat_type = 'direct'") == Int64(pairs.count))
        #expect(try setup.count("chat_members") == Int64(2 * pairs.count))
    }

    @Test func concurrentWritersFromManyConnectionsAllCommit() throws {
        let setup = try Store(path: database.path)
        let users = try setup.users("alice", "bob")
        let chatID = try setup.initiateDirectChat(userID: users[0].id, peerID: users[1].id).chatID
        let path = database.path
        let failures = Locked<[String]>([])
        let perThread = 25
        let threads = (0..<4).map { worker in
            onThread {
                do {
                    let store = try Store(path: path)
                    for index in 0..<perThread {
                        let sender = worker % 2 == 0 ? users[0].id : users[1].id
                        _ = try store.send("w\(worker)-\(index)", from: sender, to: chatID, nonce: "w\(worker)-\(index)")
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        for thread in threads { #expect(thread.wait(timeout: .now() + 60) == .success) }
        #expect(failures.withLock { $0 } == [])
        #expect(try setup.count("messages") == Int64(4 * perThread))
    }
}
