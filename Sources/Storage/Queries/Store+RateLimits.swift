import Domain
import Foundation

/// Token buckets in the database, so that both processes — and every worker of each — draw
/// from one bucket per user: a client cannot double its rate by sending over REST and
/// WebSocket at once. A bucket is read and written inside the same write transaction as the
/// action it limits (or in one of its own, for logins, uploads and searches), so the count of
/// what was allowed is exact.
extension Store {
    /// Seconds since 1970, fractional: the buckets' clock, shared by both processes.
    public static func rateClock() -> Double { Date().timeIntervalSince1970 }

    /// Takes one token from `bucket`/`key` in a transaction of its own; the refusal when the
    /// bucket is empty (nothing is taken then).
    public func takeRateToken(_ limit: RateLimit, _ bucket: RateBucket, key: String,
                              now: Double = Store.rateClock()) throws -> RateLimited? {
        try connection.write {
            var tokens = try rateTokens(limit, bucket, key: key, now: now)
            guard tokens >= 1 else { return RateLimited(retryAfter: limit.wait(from: tokens), what: bucket.noun) }
            tokens -= 1
            try storeRateTokens(tokens, bucket, key: key, now: now)
            return nil
        }
    }

    /// The refusal `takeRateToken` would give now, without taking anything: a cheap check
    /// before work that would be wasted on a refused action (creating a direct chat for a
    /// seed-001 send).
    public func peekRateToken(_ limit: RateLimit, _ bucket: RateBucket, key: String,
                              now: Double = Store.rateClock()) throws -> RateLimited? {
        let tokens = try rateTokens(limit, bucket, key: key, now: now)
        return tokens >= 1 ? nil : RateLimited(retryAfter: limit.wait(from: tokens), what: bucket.noun)
    }

    /// The bucket's tokens at `now`, refilled since it was last written; full when new.
    func rateTokens(_ limit: RateLimit, _ bucket: RateBucket, key: String, now: Double) throws -> Double {
        let stored = try connection.statement("SELECT tokens, updated_at FROM rate_buckets WHERE name = ? AND key = ?")
            .first([.text(bucket.rawValue), .text(key)]) { ($0.double(0), $0.double(1)) }
        guard let (tokens, updatedAt) = stored else { return limit.burst }
        return limit.refilled(tokens, elapsed: now - updatedAt)
    }

    func storeRateTokens(_ tokens: Double, _ bucket: RateBucket, key: String, now: Double) throws {
        try connection.statement("""
            INSERT INTO rate_buckets (name, key, tokens, updated_at) VALUES (?1, ?2, ?3, ?4)
            ON CONFLICT (name, key) DO UPDATE SET tokens = ?3, updated_at = ?4
            """).run([.text(bucket.rawValue), .text(key), .real(tokens), .real(now)])
    }

    /// Deletes buckets untouched since `before`: a bucket that has been refilling that long
    /// is full under any limit of at least one token per `now - before` seconds, and a
    /// missing bucket reads as full. Bounds the table's growth by client addresses.
    @discardableResult
    public func pruneRateBuckets(untouchedSince before: Double, limit: Int = 5_000) throws -> Int {
        try connection.write {
            try connection.statement("""
                DELETE FROM rate_buckets
                WHERE (name, key) IN (SELECT name, key FROM rate_buckets WHERE updated_at < ? LIMIT ?)
                """).run([.real(before), .integer(Int64(limit))])
            return connection.changes
        }
    }
}

/// The send buckets of one group commit: each sender's bucket read once, drawn from by each
/// of their messages in turn, and written back once, all inside the commit's transaction.
struct SendBuckets {
    let limit: RateLimit
    let now: Double
    private var tokens: [Int64: (value: Double, taken: Bool)] = [:]

    init(limit: RateLimit, now: Double) {
        self.limit = limit
        self.now = now
    }

    /// Takes a token of `userID`'s, or throws the refusal.
    mutating func take(for userID: Int64, in store: Store) throws {
        var entry: (value: Double, taken: Bool)
        if let known = tokens[userID] {
            entry = known
        } else {
            entry = (try store.rateTokens(limit, .send, key: String(userID), now: now), false)
        }
        guard entry.value >= 1 else {
            tokens[userID] = entry
            throw MessengerError.rateLimited(RateLimited(retryAfter: limit.wait(from: entry.value), what: RateBucket.send.noun))
        }
        entry.value -= 1
        entry.taken = true
        tokens[userID] = entry
    }

    /// Writes back every bucket a token was taken from.
    func store(in store: Store) throws {
        for (userID, entry) in tokens where entry.taken {
            try store.storeRateTokens(entry.value, .send, key: String(userID), now: now)
        }
    }
}
