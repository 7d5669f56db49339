/// Tokens this worker thread has fully checked — signature, claims, and that their session
/// exists and was not revoked — so that the next request with the same token costs a
/// dictionary lookup, an expiry check and a revocation lookup (`RevokedSessions`, in memory)
/// instead of an HMAC, two base64 decodes, two JSON parses and a database read (12% of
/// FCGIApp's time on authenticated reads).
///
/// Keyed by the whole token string: a forged or altered token is a different key and gets
/// the full check. A revoked session's tokens are refused on the next request whatever this
/// cache holds: `Request.authenticate` asks `RevokedSessions` on every hit. One per worker
/// (in its `Context`), so it needs no lock.
final class VerifiedTokens {
    /// Past this many tokens the cache starts over, bounding its memory.
    static let capacity = 10_000
    /// How often a session's `last_used_at` is written, at most, per worker.
    static let touchInterval: Int64 = 60

    private var entries: [Substring: (caller: Caller, expiresAt: Int64)] = [:]
    /// When this worker last wrote each session's `last_used_at`.
    private var touched: [Int64: Int64] = [:]

    /// The caller for `token` if it was verified before and has not expired since.
    func caller(for token: Substring, now: Int64) -> Caller? {
        guard let entry = entries[token] else { return nil }
        guard now < entry.expiresAt else {
            entries[token] = nil
            return nil
        }
        return entry.caller
    }

    func remember(_ token: Substring, caller: Caller, expiresAt: Int64) {
        if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
        entries[token] = (caller, expiresAt)
    }

    func forget(_ token: Substring) {
        entries[token] = nil
    }

    /// Whether the session's `last_used_at` is due to be written; notes that it will be.
    func touchIsDue(_ sessionID: Int64, now: Int64) -> Bool {
        if let last = touched[sessionID], now - last < Self.touchInterval { return false }
        if touched.count >= Self.capacity { touched.removeAll(keepingCapacity: true) }
        touched[sessionID] = now
        return true
    }
}

@available(*, unavailable)
extension VerifiedTokens: Sendable {}
