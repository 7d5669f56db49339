import Domain
import Logging
import Storage

/// What a handler may use: one worker thread's database connection, the token service,
/// the relay notifier and the configuration. Each worker thread has its own.
public final class Context {
    public let store: Store
    public let tokens: TokenService
    public let notifier: NotificationSender?
    public let configuration: Configuration
    public var logger: Logger
    /// Seconds since 1970; a parameter so that tests can move time.
    public let now: () -> Int64

    public init(store: Store, tokens: TokenService, notifier: NotificationSender?, configuration: Configuration,
                logger: Logger, now: @escaping () -> Int64) {
        self.store = store
        self.tokens = tokens
        self.notifier = notifier
        self.configuration = configuration
        self.logger = logger
        self.now = now
    }

    /// Tells connected clients, through the relay, about a commit. Never fails the request:
    /// the relay catches up from the database when a notification is lost.
    func notify(_ notification: RelayNotification) {
        guard let notifier else { return }
        if !notifier.send(notification) {
            logger.debug("relay notification dropped; the relay will catch up from the database")
        }
    }
}

@available(*, unavailable)
extension Context: Sendable {}
