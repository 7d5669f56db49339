import Domain
import Foundation
import Synchronization

/// Copies the WAL back into the database file from a thread of its own, ahead of the
/// commits that would otherwise do all of it.
///
/// SQLite checkpoints inside whichever commit grows the WAL past its threshold (1,000 pages
/// by default; the relay's writer uses 10,000: `Connection.configureForWriting`), so that
/// commit — and every writer queued behind it — waits for the copy (p99 acknowledgement
/// latency at half load was over 100 ms). With this thread copying frames every `interval`,
/// that commit finds almost everything copied already and only completes the checkpoint,
/// which lets the WAL restart from its beginning. (Turning automatic checkpoints off
/// altogether is not an option: under a steady write load a checkpoint from another thread
/// never catches the WAL fully copied at the moment a writer starts, so the WAL never
/// restarts and grows without bound.) PASSIVE never blocks writers or readers; when both
/// processes' checkpointers meet, one skips a round.
///
/// Each process's checkpointer copies after its own process's commits only (`noteCommit`, wired
/// by `Store.writer`), so that the short interval FCGIApp needs does not cost the relay CPU
/// under a WebSocket load: the more often the WAL is copied, the more often a page that many
/// commits modify is copied again.
public final class Checkpointer: Sendable {
    private let path: String
    private let interval: TimeInterval
    private let synchronous: DatabaseSynchronous
    private let stopped = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let committed = Atomic<Bool>(false)

    public init(path: String, interval: TimeInterval = 0.1, synchronous: DatabaseSynchronous = .normal) {
        self.path = path
        self.interval = interval
        self.synchronous = synchronous
    }

    /// A commit of this process added to the WAL: the next round has something to copy.
    public func noteCommit() {
        committed.store(true, ordering: .releasing)
    }

    /// Starts the thread; every `interval` until `stop()`, it checkpoints if this process
    /// committed since the last round.
    public func start(onError: @escaping @Sendable (any Error) -> Void) {
        let thread = Thread { [self] in
            defer { finished.signal() }
            let connection: Connection
            do {
                connection = try Connection(path: path, synchronous: synchronous)
            } catch {
                return onError(error)
            }
            while stopped.wait(timeout: .now() + interval) == .timedOut {
                guard committed.exchange(false, ordering: .acquiring) else { continue }
                do {
                    try connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                } catch let error as StorageError where error.isBusy {
                    continue  // the other process is checkpointing
                } catch {
                    onError(error)
                }
            }
        }
        thread.name = "sqlite-checkpoint"
        thread.start()
    }

    /// Stops the thread after its current checkpoint, if any.
    public func stop() {
        stopped.signal()
        finished.wait()
    }
}
