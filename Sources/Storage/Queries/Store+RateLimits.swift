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
        try database.write { try drawRateToken(limit, bucket, key: key, now: now) }
    }

    /// Takes one token inside the caller's transaction, or returns the refusal and takes
    /// nothing. One UPDATE does the usual draw — refill since the last write, check, take — so
    /// a send pays a single index probe and row write for its limit; only a bucket seen for
    /// the first time is inserted (full, less the token), and only a refused caller reads the
    /// bucket, to say how long it must wait. (An upsert doing both in one statement costs twice
    /// the UPDATE: it probes for the conflict, then again for the update.)
    ///
    /// `updated_at` never moves back: a process whose clock is behind the last writer's
    /// refills nothing rather than counting the same time twice.
    func drawRateToken(_ limit: RateLimit, _ bucket: RateBucket, key: String, now: Double) throws -> RateLimited? {
        let values: [SQLValue] = [.text(bucket.rawValue), .text(key), .real(limit.burst), .real(now), .real(limit.rate)]
        guard try database.statement(Self.tokenDrawn).run(values) == 0 else { return nil }
        let inserted = try database.statement("""
            INSERT INTO rate_buckets (name, key, tokens, updated_at) VALUES (?1, ?2, CAST(?3 AS DOUBLE PRECISION) - 1, ?4)
            ON CONFLICT (name, key) DO NOTHING
            """).run(Array(values.prefix(4)))
        guard inserted == 0 else { return nil }
        let tokens = try rateTokens(limit, bucket, key: key, now: now)
        return RateLimited(retryAfter: limit.wait(from: tokens), what: bucket.noun)
    }

    /// The bucket refilled since its last write, less the token, if it has one: `?1` name,
    /// `?2` key, `?3` burst, `?4` now, `?5` rate.
    private static let tokenDrawn: SQL = """
        UPDATE rate_buckets
        SET tokens = \(refilled) - 1, updated_at = \(.greatest("updated_at", "?4"))
        WHERE name = ?1 AND key = ?2 AND \(refilled) >= 1
        """
    private static let refilled = SQL(sqlite: "min(?3, tokens + max(0, ?4 - updated_at) * ?5)",
                                      postgres: "least(?3, tokens + greatest(0, ?4 - updated_at) * ?5)")

    /// Takes one token from the send bucket of each entry of `senders` (a sender appears once
    /// per send, in the order of the sends), inside the caller's transaction: the answer for
    /// each entry, nil when its token was taken. What `drawRateToken` does per send, done for
    /// a whole group commit in two statements — one read of every sender's bucket, one write
    /// of those that gave tokens — instead of a statement per send (in a round of the relay's
    /// at load, a tenth of its storage thread against 4.6 %, BENCHMARKS.md "Issue 16,
    /// closed"). Exact because the caller holds the write lock from the read to the write.
    func drawSendTokens(_ limit: RateLimit, senders: [Int64], now: Double) throws -> [RateLimited?] {
        let stored = try database.statement(Self.sendBuckets).rows([.text(RateBucket.send.rawValue), SQLValue.idList(Set(senders))]) {
            (sender: $0.int(0), tokens: $0.double(1), updatedAt: $0.double(2))
        }
        var updatedAt: [Int64: Double] = [:]
        var tokens: [Int64: Double] = [:]
        for bucket in stored {
            updatedAt[bucket.sender] = bucket.updatedAt
            tokens[bucket.sender] = limit.refilled(bucket.tokens, elapsed: now - bucket.updatedAt)
        }
        var drawn: Set<Int64> = []
        let answers = senders.map { sender -> RateLimited? in
            let available = tokens[sender] ?? limit.burst
            guard available >= 1 else {
                return RateLimited(retryAfter: limit.wait(from: available), what: RateBucket.send.noun)
            }
            tokens[sender] = available - 1
            drawn.insert(sender)
            return nil
        }
        // Only buckets that gave a token are written, as `drawRateToken` writes only then; the
        // clock never moves back.
        guard !drawn.isEmpty else { return answers }
        let rows = drawn.map { "[\($0),\(tokens[$0]!),\(max(now, updatedAt[$0] ?? now))]" }
        try database.statement(Self.sendBucketsWritten).run([.text(RateBucket.send.rawValue), .text("[" + rows.joined(separator: ",") + "]")])
        return answers
    }

    private static let sendBuckets: SQL = """
        SELECT CAST(key AS BIGINT), tokens, updated_at FROM rate_buckets
        WHERE name = ? AND key IN (SELECT CAST(ids.value AS TEXT) FROM \(.idRows("?")) ids)
        """
    /// `?2`: a JSON array of `[sender, tokens, updated_at]`. (`WHERE true` tells SQLite's
    /// parser that `ON CONFLICT` is the upsert's, not a join's.)
    private static let sendBucketsWritten = SQL(sqlite: """
        INSERT INTO rate_buckets (name, key, tokens, updated_at)
        SELECT ?1, CAST(value ->> 0 AS TEXT), value ->> 1, value ->> 2 FROM json_each(?2) WHERE true
        ON CONFLICT (name, key) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at
        """, postgres: """
        INSERT INTO rate_buckets (name, key, tokens, updated_at)
        SELECT CAST(?1 AS TEXT), value ->> 0, CAST(value ->> 1 AS DOUBLE PRECISION), CAST(value ->> 2 AS DOUBLE PRECISION)
        FROM json_array_elements(CAST(?2 AS json)) AS value
        ON CONFLICT (name, key) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at
        """)

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
        let stored = try database.statement("SELECT tokens, updated_at FROM rate_buckets WHERE name = ? AND key = ?")
            .first([.text(bucket.rawValue), .text(key)]) { ($0.double(0), $0.double(1)) }
        guard let (tokens, updatedAt) = stored else { return limit.burst }
        return limit.refilled(tokens, elapsed: now - updatedAt)
    }

    /// Deletes buckets untouched since `before`: a bucket that has been refilling that long
    /// is full under any limit of at least one token per `now - before` seconds, and a
    /// missing bucket reads as full. Bounds the table's growth by client addresses.
    ///
    /// The table has no index on `updated_at` (every send would pay for it), so the idle
    /// buckets are found by a scan in a read transaction, which never blocks writers, and
    /// deleted by primary key; one touched since the scan is kept.
    @discardableResult
    public func pruneRateBuckets(untouchedSince before: Double, limit: Int = 5_000) throws -> Int {
        let idle = try database.statement("SELECT name, key FROM rate_buckets WHERE updated_at < ? LIMIT ?")
            .rows([.real(before), .integer(Int64(limit))]) { ($0.string(0), $0.string(1)) }
        guard !idle.isEmpty else { return 0 }
        return try database.write {
            let delete = try database.statement("DELETE FROM rate_buckets WHERE name = ? AND key = ? AND updated_at < ?")
            var deleted = 0
            for (name, key) in idle {
                deleted += try delete.run([.text(name), .text(key), .real(before)])
            }
            return deleted
        }
    }
}
