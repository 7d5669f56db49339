import Domain
import Logging
import Storage

/// What a handler may use: one worker thread's database connection, the token service,
/// the revoked sessions, the password slots, the relay notifier and the configuration.
/// Each worker thread has its own.
public final class Context {
    /// This worker thread's own connection, for reads.
    public let store: Store
    /// The process's one write connection, shared by all workers (see `SerializedStore`).
    public let writer: SerializedStore
    public let tokens: TokenService
    /// This worker's tokens already checked.
    let verifiedTokens = VerifiedTokens()
    /// The process's view of revoked sessions, shared by all workers.
    let revokedSessions: RevokedSessions
    /// The process's bound on concurrent password hashing, shared by all workers.
    let passwords: PasswordSlots
    /// The process's one notifier, shared by all workers; nil when the relay's socket could
    /// not be opened.
    public let notifier: RelayNotifier?
    public let configuration: Configuration
    public var logger: Logger
    /// Seconds since 1970; a parameter so that tests can move time.
    public let now: () -> Int64

    /// The process's one record of the relay's health, shared by all workers (`/healthz`).
    let relayHealth: RelayHealth

    init(store: Store, writer: SerializedStore, tokens: TokenService, revokedSessions: RevokedSessions,
         passwords: PasswordSlots, notifier: RelayNotifier?, configuration: Configuration,
         logger: Logger, now: @escaping () -> Int64, relayHealth: RelayHealth = RelayHealth()) {
        self.relayHealth = relayHealth
        self.store = store
        self.revokedSessions = revokedSessions
        self.passwords = passwords
        self.writer = writer
        self.tokens = tokens
        self.notifier = notifier
        self.configuration = configuration
        self.logger = logger
        self.now = now
    }

    /// Takes a token from `bucket`/`key` under `limit` (nil: off); 429 with `Retry-After`
    /// when the bucket is empty. The bucket is shared with every worker and the relay.
    ///
    /// This is the hook for limits a route applies itself: `GET /search` calls
    /// `try context.limitRate(.search, key: String(caller.id))`.
    func limitRate(_ bucket: RateBucket, key: String) throws {
        guard let limit = limit(for: bucket) else { return }
        if let refusal = try writer.perform({ try $0.takeRateToken(limit, bucket, key: key) }) {
            throw HTTPError.rateLimited(refusal)
        }
    }

    /// The configured limit of `bucket`; nil when that limit is off.
    func limit(for bucket: RateBucket) -> RateLimit? {
        let limits = configuration.rateLimits
        switch bucket {
        case .loginAddress: return limits.loginPerAddress
        case .loginUser: return limits.login
        case .send: return limits.send
        case .upload: return limits.upload
        case .search: return limits.search
        }
    }

    /// Tells connected clients, through the relay, about a commit. Never fails the request:
    /// the relay catches up from the database when a notification is lost.
    func notify(_ notification: RelayNotification) {
        notifier?.notify(notification)
    }
}

@available(*, unavailable)
extension Context: Sendable {}
