import Domain
import Storage

/// The other relays of the deployment (`RELAY_INSTANCES`), told what this one did: that it
/// committed events (they read them from the database, like FCGIApp's), a member's TYPING
/// (never stored) and a user's presence change.
///
/// On SQLite, over their notification sockets (datagrams, the relays of this host). On
/// PostgreSQL, as `NOTIFY messenger_relays` (`PostgresNotifier`), which every relay on every
/// host LISTENs to: there a commit needs no telling (its transaction notifies
/// `messenger_events` as it commits), and a payload names the relay it came from, so that a
/// relay ignores its own.
///
/// With one relay there is nobody to tell and every call does nothing.
final class RelayPeers: Sendable {
    /// The PostgreSQL channel of TYPING and presence between relays.
    static let channel = "messenger_relays"

    /// This relay's instance number (1-based): its share of `presence_relays`.
    let instance: Int
    /// How many relays the deployment runs.
    let count: Int
    private let sender: NotificationSender?
    /// Coalesces commit hints: one datagram per burst of rounds, like FCGIApp's.
    private let commits: RelayNotifier?
    private let postgres: PostgresNotifier?

    static let alone = RelayPeers(instance: 1, count: 1, sender: nil, postgres: nil)

    convenience init(configuration: Configuration, onError: @escaping @Sendable (any Error) -> Void = { _ in }) throws {
        if let url = configuration.postgresURL {
            let notifier = configuration.relayInstances > 1
                ? PostgresNotifier(url: url, channel: Self.channel, onError: onError) : nil
            self.init(instance: configuration.instance, count: configuration.relayInstances, sender: nil, postgres: notifier)
            return
        }
        let paths = configuration.notifySocketPaths(exceptRelay: configuration.instance)
        self.init(instance: configuration.instance, count: configuration.relayInstances,
                  sender: paths.isEmpty ? nil : try NotificationSender(socketPaths: paths), postgres: nil)
    }

    private init(instance: Int, count: Int, sender: NotificationSender?, postgres: PostgresNotifier?) {
        self.instance = instance
        self.count = count
        self.sender = sender
        self.postgres = postgres
        commits = sender.map { RelayNotifier(sender: $0) }
    }

    func start() {
        commits?.start()
        postgres?.start()
    }

    func stop() {
        commits?.stop()
        postgres?.stop()
    }

    /// Events were committed here.
    func committed() { commits?.notify(.events) }

    /// A TYPING or presence change, sent at once (each is throttled where it arises).
    func tell(_ notification: RelayNotification) {
        sender?.send(notification)
        postgres?.notify("\(instance) " + String(decoding: notification.encoded, as: UTF8.self))
    }

    /// The notification in a `channel` payload of another relay's; nil for this relay's own
    /// or one that cannot be read.
    func received(_ payload: String) -> RelayNotification? {
        guard let space = payload.firstIndex(of: " "), let from = Int(payload[..<space]), from != instance else {
            return nil
        }
        return RelayNotification(decoding: Array(payload.utf8[payload.utf8.index(after: space)...]))
    }
}
