/// Tokens this worker thread has fully checked — signature, claims, and that the user
/// exists — so that the next request with the same token costs a dictionary lookup and an
/// expiry check instead of an HMAC, two base64 decodes, two JSON parses and a database read
/// (12% of FCGIApp's time on authenticated reads).
///
/// Keyed by the whole token string: a forged or altered token is a different key and gets
/// the full check. Sound because users are never deleted. One per worker (in its `Context`),
/// so it needs no lock.
final class VerifiedTokens {
    /// Past this many tokens the cache starts over, bounding its memory.
    static let capacity = 10_000

    private var entries: [Substring: (caller: Caller, expiresAt: Int64)] = [:]

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
}

@available(*, unavailable)
extension VerifiedTokens: Sendable {}
