import NIOConcurrencyHelpers

/// Errors seen by idle sockets (ERROR frames); rare, so one lock is plenty.
final class IdleEvents: Sendable {
    private let count = NIOLockedValueBox(0)

    func error() { count.withLockedValue { $0 += 1 } }

    var errors: Int { count.withLockedValue { $0 } }
}

/// An idle socket: answers pings (WebSocketClient does) and watches for ERROR frames.
final class IdleMember: SocketBehavior {
    private let events: IdleEvents

    init(events: IdleEvents) {
        self.events = events
    }

    func received(text: UnsafeRawBufferPointer, on socket: WebSocketClient) {
        if ServerFrameScanner.kind(of: text) == .error { events.error() }
    }

    func closed(_ socket: WebSocketClient) {}
}

@available(*, unavailable)
extension IdleMember: Sendable {}
