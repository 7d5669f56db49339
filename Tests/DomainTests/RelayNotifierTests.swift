import Domain
import Foundation
import Testing

/// A bound Unix datagram socket standing in for the relay's notification socket.
private final class Listener {
    let path: String
    private let descriptor: Int32

    init() throws {
        path = FileManager.default.temporaryDirectory.path + "/notify-\(UUID().uuidString.prefix(8)).sock"
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
    }

    deinit {
        close(descriptor)
        unlink(path)
    }

    /// Every datagram that arrives within `seconds`, decoded.
    func receive(for seconds: Double) -> [RelayNotification] {
        var received: [RelayNotification] = []
        let deadline = Date(timeIntervalSinceNow: seconds)
        var buffer = [UInt8](repeating: 0, count: 512)
        while Date() < deadline {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 10) > 0 else { continue }
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count > 0, let notification = RelayNotification(decoding: buffer[..<count]) {
                received.append(notification)
            }
        }
        return received
    }
}

@Suite struct RelayNotifierTests {
    @Test func aBurstBecomesFewDatagramsEndingWithTheLatest() throws {
        let listener = try Listener()
        let notifier = RelayNotifier(sender: try NotificationSender(socketPath: listener.path), interval: 0.05)
        notifier.start()
        defer { notifier.stop() }
        for id in 1...1_000 { notifier.notify(.message(chatID: 1, messageID: Int64(id))) }
        let received = listener.receive(for: 0.3)
        #expect(!received.isEmpty)
        #expect(received.count <= 4)  // one at once, then at most one per 50 ms
        #expect(received.last == .message(chatID: 1, messageID: 1_000))
    }

    @Test func everyNotificationIsFollowedByADatagram() throws {
        let listener = try Listener()
        let notifier = RelayNotifier(sender: try NotificationSender(socketPath: listener.path), interval: 0.01)
        notifier.start()
        defer { notifier.stop() }
        for id in 1...5 {
            notifier.notify(.chat(chatID: Int64(id)))
            #expect(listener.receive(for: 0.05).last == .chat(chatID: Int64(id)))
        }
    }

    @Test func stopSendsWhatIsQueued() throws {
        let listener = try Listener()
        let notifier = RelayNotifier(sender: try NotificationSender(socketPath: listener.path), interval: 0.2)
        notifier.start()
        notifier.notify(.chat(chatID: 1))
        Thread.sleep(forTimeInterval: 0.02)  // sent; the thread now waits out its 200 ms
        notifier.notify(.chat(chatID: 2))
        notifier.stop()
        #expect(listener.receive(for: 0.05) == [.chat(chatID: 1), .chat(chatID: 2)])
    }
}
