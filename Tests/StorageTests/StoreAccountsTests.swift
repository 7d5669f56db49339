import Domain
import Foundation
@testable import Storage
import Testing

/// Sessions, revocations and their watcher, the shared rate buckets, and users by folded key.
@Suite struct StoreAccountsTests {
    let database: TestDatabase
    let store: Store

    init() throws {
        database = try TestDatabase()
        store = try database.migratedStore()
    }

    @Test func usersAreFoundByTheirFoldedKey() throws {
        let alice = try store.login(username: "Алиса")
        #expect(try store.login(username: "алиса") == alice)
        #expect(try store.user(username: "АЛИСА") == alice)
        let strasse = try store.login(username: "Straße")
        #expect(try store.user(username: "STRASSE") == strasse)
        #expect(try store.searchUsers(matching: "ASSE", limit: 10) == [strasse])
        // A row inserted without a key gets lower(username) from the trigger.
        try store.database.statement("INSERT INTO users (username) VALUES (?)").run([.text("RawName")])
        #expect(try store.user(username: "rawname")?.username == "RawName")
    }

    @Test func revocationsAreOrderedAndReadOnce() throws {
        let user = try store.login(username: "sam").id
        let far = Int64(time(nil)) + 3_600
        let first = try store.createSession(userID: user, expiresAt: far)
        let second = try store.createSession(userID: user, expiresAt: far)
        let third = try store.createSession(userID: user, expiresAt: far)
        #expect(try store.sessionState(id: first, userID: user) == .active)
        #expect(try store.sessionState(id: first, userID: user + 1) == .unknown)
        #expect(try store.revokeSession(first, userID: user) == [first])
        #expect(try store.revokeSession(first, userID: user) == [])
        #expect(try store.revokeSessions(userID: user, keeping: third) == [second])
        #expect(try store.sessionState(id: second, userID: user) == .revoked)
        let read = try store.revocations(after: 0, now: Int64(time(nil)))
        #expect(read.sessions.map(\.id) == [first, second])
        #expect(read.through == 2)
        #expect(try store.revocations(after: read.through, now: Int64(time(nil))).sessions.isEmpty)
        #expect(try store.activeSessions(userID: user, now: Int64(time(nil))).map(\.id) == [third])
    }

    @Test func pruningKeepsTheNewestRevocationSoItsCounterNeverGoesBack() throws {
        let user = try store.login(username: "uma").id
        let old = try store.createSession(userID: user, expiresAt: 10)
        let older = try store.createSession(userID: user, expiresAt: 5)
        let live = try store.createSession(userID: user, expiresAt: Int64(time(nil)) + 3_600)
        try store.revokeSession(older, userID: user)
        try store.revokeSession(old, userID: user)  // revoked_seq 2, the newest
        #expect(try store.pruneSessions(expiredBefore: 100) == 1)  // `older` only
        #expect(try store.sessionState(id: old, userID: user) == .revoked)
        try store.revokeSession(live, userID: user)
        #expect(try store.revocations(after: 2, now: 0).sessions.map(\.id) == [live])
    }

    @Test func theWatcherSeesAnotherConnectionsRevocationWithinAPoll() throws {
        let user = try store.login(username: "tess").id
        let session = try store.createSession(userID: user, expiresAt: Int64(time(nil)) + 3_600)
        let watcher = try RevokedSessions(location: database.location, pollInterval: 0.05)
        let seen = Locked<[Int64]>([])
        watcher.start(onRevoked: { ids in seen.withLock { $0 += ids } }, onError: { Issue.record("\($0)") })
        defer { watcher.stop() }
        #expect(!watcher.isRevoked(session))
        try database.otherStore().revokeSession(session, userID: user)  // as the other process would
        let deadline = Date(timeIntervalSinceNow: 2)
        while !watcher.isRevoked(session) && Date() < deadline { usleep(10_000) }
        #expect(watcher.isRevoked(session))
        usleep(100_000)
        #expect(seen.withLock { $0 } == [session])
    }

    @Test func bucketsAreSharedAndRefill() throws {
        let limit = RateLimit(rate: 2, burst: 3)
        let other = try database.otherStore()
        #expect(try store.takeRateToken(limit, .search, key: "1", now: 100) == nil)
        #expect(try other.takeRateToken(limit, .search, key: "1", now: 100) == nil)
        #expect(try store.takeRateToken(limit, .search, key: "1", now: 100) == nil)
        let refused = try #require(try other.takeRateToken(limit, .search, key: "1", now: 100))
        #expect(refused.retryAfter == 0.5)
        #expect(refused.retryAfterSeconds == 1)
        #expect(try store.takeRateToken(limit, .search, key: "2", now: 100) == nil)  // another key
        #expect(try store.takeRateToken(limit, .search, key: "1", now: 100.5) == nil)  // refilled one
        #expect(try store.peekRateToken(limit, .search, key: "1", now: 100.5) != nil)
        // A process whose clock is behind refills nothing and leaves `updated_at` where it was.
        #expect(try store.takeRateToken(limit, .search, key: "3", now: 101) == nil)
        #expect(try other.takeRateToken(limit, .search, key: "3", now: 95) == nil)
        #expect(try store.takeRateToken(limit, .search, key: "3", now: 101) == nil)
        #expect(try store.takeRateToken(limit, .search, key: "3", now: 101) != nil)
        #expect(try store.pruneRateBuckets(untouchedSince: 100.2) == 1)  // key 2, untouched since 100
        #expect(try store.pruneRateBuckets(untouchedSince: 100.2) == 0)
        #expect(try store.peekRateToken(limit, .search, key: "3", now: 101) != nil)  // kept: touched at 101
    }

    @Test func aGroupCommitStoresExactlyWhatTheSendLimitAllows() throws {
        let (ann, ben) = try (store.login(username: "ann").id, store.login(username: "ben").id)
        let chat = try store.initiateDirectChat(userID: ann, peerID: ben).chatID
        let batch = (0..<6).map { OutgoingMessage(senderID: $0 % 3 == 0 ? ben : ann, chatID: chat,
                                                  draft: try! MessageDraft(content: "m\($0)")) }
        let results = store.post(batch, sendLimit: RateLimit(rate: 0.001, burst: 2))
        let refused = results.map { result -> Bool in
            if case .failure(let error as MessengerError) = result { return error.kind == .rateLimited }
            return false
        }
        // ann sends 1, 2, 4, 5 (two allowed), ben 0, 3 (both allowed).
        #expect(refused == [false, false, false, false, true, true])
        #expect(try store.count("messages") == 4)
        // The bucket was written: the next send of ann's is refused too.
        #expect(throws: MessengerError.self) {
            try store.post(OutgoingMessage(senderID: ann, chatID: chat, draft: MessageDraft(content: "x")),
                           sendLimit: RateLimit(rate: 0.001, burst: 2))
        }
    }

    @Test func aBigGroupCommitDrawsItsTokensAtOnceWithTheSameAnswers() throws {
        let (ann, ben) = try (store.login(username: "ann").id, store.login(username: "ben").id)
        let chat = try store.initiateDirectChat(userID: ann, peerID: ben).chatID
        let limit = RateLimit(rate: 0.001, burst: 5)
        #expect(try store.takeRateToken(limit, .send, key: String(ben)) == nil)  // ben has 4 left
        let count = Store.batchDrawThreshold + 4
        let batch = (0..<count).map { OutgoingMessage(senderID: $0 % 2 == 0 ? ann : ben, chatID: chat,
                                                      draft: try! MessageDraft(content: "m\($0)")) }
        let results = store.post(batch, sendLimit: limit)
        let stored = results.indices.filter { (try? results[$0].get()) != nil }
        // ann's first five (0, 2, … 8) and ben's first four (1, 3, 5, 7).
        #expect(stored == [0, 1, 2, 3, 4, 5, 6, 7, 8])
        #expect(try store.count("messages") == 9)
        #expect(try store.rateTokens(limit, .send, key: String(ann), now: Store.rateClock()) < 1)
    }

    @Test func aRoundsDrawsMatchOneDrawPerSendAndShareTheBucket() throws {
        let limit = RateLimit(rate: 1, burst: 3)
        // A REST send at t=100 leaves 2 of sender 7's tokens; sender 8 has no bucket yet.
        #expect(try store.takeRateToken(limit, .send, key: "7", now: 100) == nil)
        let answers = try store.database.write {
            try store.drawSendTokens(limit, senders: [7, 8, 7, 7, 8, 7], now: 100.5)
        }
        // 7 has 2.5 at 100.5: two sends pass, the third (0.5 left) waits 0.5 s, and so does
        // the fourth (nothing was taken by the third); 8 starts full.
        #expect(answers.map { $0 == nil } == [true, true, true, false, true, false])
        #expect(answers[3]?.retryAfter == 0.5)
        // The round wrote what it took: a single draw right after sees 0.5 tokens for 7.
        #expect(try store.takeRateToken(limit, .send, key: "7", now: 100.5) != nil)
        #expect(try store.takeRateToken(limit, .send, key: "7", now: 101) == nil)
        #expect(try store.rateTokens(limit, .send, key: "8", now: 100.5) == 1)
        // A clock behind the bucket's refills nothing and leaves updated_at where it was.
        let late = try store.database.write { try store.drawSendTokens(limit, senders: [8], now: 90) }
        #expect(late == [nil])
        #expect(try store.rateTokens(limit, .send, key: "8", now: 100.5) == 0)
    }
}
