import Foundation

/// Blocks the given signals in every thread started after it, so that one thread can
/// wait for them with `sigwait` instead of running code in a signal handler.
public struct SignalWaiter {
    private var set = sigset_t()

    public init(_ signals: [Int32]) {
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Waits for one of the signals and returns it.
    public func wait() -> Int32 {
        var set = self.set
        var received: Int32 = 0
        sigwait(&set, &received)
        return received
    }
}
