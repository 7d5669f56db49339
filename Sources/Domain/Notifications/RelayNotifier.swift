import Foundation

/// Sends `RelayNotification`s to the relay from a thread of its own, at most one datagram per
/// `interval`: the latest notification stands for every one queued since the last datagram.
///
/// A notification only wakes the relay, which then reads whatever was committed, so one
/// datagram after a burst of commits tells it everything the burst would have. FCGIApp
/// sent one per message before: under 7,000 REST writes a second the relay's event loop woke
/// for each (0.15–0.2 cores). `notify` never blocks a request: it stores the notification and
/// signals the thread if it was idle. Every notification is followed by a datagram sent after
/// it, within `interval`.
public final class RelayNotifier: @unchecked Sendable {
    // @unchecked: `latest` and `stopping` are guarded by `condition`.
    private let sender: NotificationSender
    private let interval: TimeInterval
    private let condition = NSCondition()
    private var latest: RelayNotification?
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)

    public init(sender: NotificationSender, interval: TimeInterval = 0.002) {
        self.sender = sender
        self.interval = interval
    }

    public func start() {
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.name = "relay-notifier"
        thread.start()
    }

    /// Queues `notification`; it, or a later one, goes out within `interval`.
    public func notify(_ notification: RelayNotification) {
        condition.lock()
        if latest == nil { condition.signal() }
        latest = notification
        condition.unlock()
    }

    /// Sends what is queued, then stops the thread.
    public func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
        finished.wait()
    }

    private func run() {
        while true {
            condition.lock()
            while latest == nil && !stopping { condition.wait() }
            let notification = latest
            latest = nil
            let done = stopping
            condition.unlock()
            // A send the relay's socket refused (relay down or its buffer full) is dropped: the
            // relay catches up from the database.
            if let notification { sender.send(notification) }
            if done { return }
            Thread.sleep(forTimeInterval: interval)
        }
    }
}
