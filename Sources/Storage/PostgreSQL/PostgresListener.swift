import CPostgres
import CSQLite
import Domain
import Foundation
import Synchronization

/// PostgreSQL's LISTEN/NOTIFY on a thread of its own: a connection that listens on
/// `channels` and hands each notification (its channel and payload) to `onNotification`.
///
/// On PostgreSQL this is how a relay hears of commits made by any FCGIApp or relay on any
/// host (`eventsChannel`), where on SQLite a datagram to its Unix socket tells it. A
/// notification is only a hint, as a datagram is: a relay reads what was committed from the
/// event stream, and polls it anyway (every 250 ms), so one lost while the connection was down
/// delays delivery, never loses it. After a failure the listener reconnects (every second
/// until it can), calls `onNotification` once per channel (whatever was missed meanwhile is in
/// the stream), and reports the failure to `onError`.
public final class PostgresListener: @unchecked Sendable {
    // @unchecked: everything but `stopping` (atomic) is immutable or used only by the
    // listening thread.
    /// What a write transaction that appended events notifies at its commit
    /// (`PostgresConnection.notifyAtCommit`).
    public static let eventsChannel = "messenger_events"

    private let url: String
    private let channels: [String]
    private let onNotification: @Sendable (_ channel: String, _ payload: String) -> Void
    private let onError: @Sendable (any Error) -> Void
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    public init(url: String, channels: [String],
                onNotification: @escaping @Sendable (_ channel: String, _ payload: String) -> Void,
                onError: @escaping @Sendable (any Error) -> Void) {
        precondition(channels.allSatisfy { $0.allSatisfy { $0.isLetter || $0 == "_" } }, "channel names are identifiers")
        self.url = url
        self.channels = channels
        self.onNotification = onNotification
        self.onError = onError
    }

    public func start() {
        let thread = Thread { [self] in
            defer { finished.signal() }
            var first = true
            while !stopping.load(ordering: .acquiring) {
                do {
                    try listen(announceMissed: !first)
                } catch {
                    if !stopping.load(ordering: .acquiring) { onError(error) }
                }
                first = false
                // Before reconnecting: a database that is down is not asked twenty times a second.
                for _ in 0..<4 where !stopping.load(ordering: .acquiring) { usleep(250_000) }
            }
        }
        thread.name = "pg-listen"
        thread.start()
    }

    /// Stops the thread (within a quarter of a second) and closes its connection.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        finished.wait()
    }

    /// Connects, listens, and passes notifications on until the connection fails or `stop`.
    private func listen(announceMissed: Bool) throws {
        let connection = try PostgresConnection(url: url)
        for channel in channels { try connection.execute("LISTEN \(channel)") }
        if announceMissed { channels.forEach { onNotification($0, "") } }
        let handle = connection.handle
        let descriptor = PQsocket(handle)
        guard descriptor >= 0 else { throw StorageError(code: SQLITE_IOERR, message: "the listening connection has no socket") }
        while !stopping.load(ordering: .acquiring) {
            var wait = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&wait, 1, 250)
            guard ready >= 0 || errno == EINTR else {
                throw StorageError(code: SQLITE_IOERR, message: "poll on the listening connection: \(String(cString: strerror(errno)))")
            }
            guard ready > 0 else { continue }
            guard PQconsumeInput(handle) == 1 else {
                throw StorageError(code: SQLITE_IOERR, message: "the listening connection failed: "
                                   + String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines))
            }
            while let notification = PQnotifies(handle) {
                let channel = String(cString: notification.pointee.relname)
                let payload = notification.pointee.extra.map { String(cString: $0) } ?? ""
                PQfreemem(notification)
                onNotification(channel, payload)
            }
        }
    }
}
