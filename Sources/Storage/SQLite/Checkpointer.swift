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
/// A WAL restarts from its beginning only at a moment when no reader still uses a snapshot
/// older than the last checkpoint; with a dozen connections reading all the time that moment
/// may never come, and the WAL grew to 880 MB in a 30-minute soak. So when the WAL holds more
/// than `restartBytes`, the round asks for a RESTART checkpoint: it waits (at most
/// `restartWaitMilliseconds`, holding off new writers meanwhile) for the readers of older
/// snapshots to finish, which takes milliseconds, and the next commit writes the WAL from
/// its beginning again; `journal_size_limit` then cuts the file back.
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
    private let restartBytes: Int64
    /// How long a RESTART checkpoint may hold off writers while it waits for readers.
    static let restartWaitMilliseconds: Int32 = 50

    public init(path: String, interval: TimeInterval = 0.1, synchronous: DatabaseSynchronous = .normal,
                restartBytes: Int64 = 64 << 20) {
        self.path = path
        self.interval = interval
        self.synchronous = synchronous
        self.restartBytes = restartBytes
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
            let pageSize: Int64
            do {
                pageSize = try connection.statement("PRAGMA page_size").first { $0.int(0) } ?? 4096
            } catch {
                return onError(error)
            }
            while stopped.wait(timeout: .now() + interval) == .timedOut {
                guard committed.exchange(false, ordering: .acquiring) else { continue }
                do {
                    try checkpoint(connection, pageSize: pageSize)
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

    /// One round: a PASSIVE checkpoint, and a RESTART one when the WAL has grown past
    /// `restartBytes` (see the type's comment).
    private func checkpoint(_ connection: Connection, pageSize: Int64) throws {
        // The row is (busy, frames in the WAL, frames copied); -1s when not in WAL mode.
        let walFrames = try connection.statement("PRAGMA wal_checkpoint(PASSIVE)").first { $0.int(1) } ?? 0
        guard walFrames * (pageSize + 24) > restartBytes else { return }
        connection.setBusyWait(milliseconds: Self.restartWaitMilliseconds)
        defer { connection.setBusyWait(milliseconds: connection.busyTimeoutMilliseconds) }
        _ = try connection.statement("PRAGMA wal_checkpoint(RESTART)").first { $0.int(0) }
    }

    /// Stops the thread after its current checkpoint, if any.
    public func stop() {
        stopped.signal()
        finished.wait()
    }
}
