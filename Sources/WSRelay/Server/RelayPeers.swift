import Domain

/// The other relays of the deployment (`RELAY_INSTANCES`), told over their notification
/// sockets what this one did: that it committed events (they read them from the database,
/// like FCGIApp's), a member's TYPING (never stored) and a user's presence change.
///
/// With one relay there is nobody to tell and every call does nothing.
final class RelayPeers: Sendable {
    /// This relay's instance number (1-based): its share of `presence_relays`.
    let instance: Int
    /// How many relays the deployment runs.
    let count: Int
    private let sender: NotificationSender?
    /// Coalesces commit hints: one datagram per burst of rounds, like FCGIApp's.
    private let commits: RelayNotifier?

    static let alone = RelayPeers(instance: 1, count: 1, sender: nil)

    convenience init(configuration: Configuration) throws {
        let paths = configuration.notifySocketPaths(exceptRelay: configuration.instance)
        self.init(instance: configuration.instance, count: configuration.relayInstances,
                  sender: paths.isEmpty ? nil : try NotificationSender(socketPaths: paths))
    }

    private init(instance: Int, count: Int, sender: NotificationSender?) {
        self.instance = instance
        self.count = count
        self.sender = sender
        commits = sender.map { RelayNotifier(sender: $0) }
    }

    func start() { commits?.start() }
    func stop() { commits?.stop() }

    /// Events were committed here.
    func committed() { commits?.notify(.events) }

    /// A TYPING or presence change, sent at once (each is throttled where it arises).
    func tell(_ notification: RelayNotification) { sender?.send(notification) }
}
