import Foundation

/// The revoked sessions whose tokens have not expired yet, as one process knows them: read at
/// start, then followed by a thread of its own that reads new revocations every
/// `pollInterval` (by `revoked_seq`, an indexed range read of nothing when nothing changed).
///
/// Token checks ask `isRevoked` — a lock and a set lookup, no database read — so that the
/// per-worker token caches of FCGIApp and the relay's upgrades stay as cheap as before, and
/// a revocation made by either process is refused by both within `pollInterval` plus one
/// read. The revoking process notes its own revocations at once (`note`).
public final class RevokedSessions: @unchecked Sendable {
    // @unchecked: `revoked`, `through` are touched only with `lock` held.
    private let lock = NSLock()
    private var revoked: [Int64: Int64] = [:]  // session id → its tokens' expiry
    private var through: Int64 = 0
    private let location: DatabaseLocation
    public let pollInterval: TimeInterval
    private let stopped = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    /// 0.2 s: the bound is one second, and an empty indexed read costs microseconds.
    public static let defaultPollInterval: TimeInterval = 0.2

    /// Reads every current revocation from the database at `location`.
    public init(location: DatabaseLocation, pollInterval: TimeInterval = RevokedSessions.defaultPollInterval) throws {
        self.location = location
        self.pollInterval = pollInterval
        let store = try location.openStore()
        _ = try absorb(from: store, now: Int64(time(nil)))
    }

    /// Reads every current revocation from the SQLite database at `path`.
    public convenience init(path: String, pollInterval: TimeInterval = RevokedSessions.defaultPollInterval) throws {
        try self.init(location: .sqlite(path: path), pollInterval: pollInterval)
    }

    /// Whether the session was revoked (as of the last read, or a `note`).
    public func isRevoked(_ sessionID: Int64) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return revoked[sessionID] != nil
    }

    /// Revocations this process just committed, known before the next read.
    public func note(_ sessionIDs: [Int64], expiresAt: Int64) {
        lock.lock()
        for id in sessionIDs { revoked[id] = max(revoked[id] ?? 0, expiresAt) }
        lock.unlock()
    }

    /// Starts the thread; `onRevoked` gets each newly read batch of revoked sessions (the
    /// relay closes their sockets), from that thread.
    public func start(onRevoked: @escaping @Sendable ([Int64]) -> Void = { _ in },
                      onError: @escaping @Sendable (any Error) -> Void) {
        let thread = Thread { [self] in
            defer { finished.signal() }
            let store: Store
            do {
                store = try location.openStore()
            } catch {
                return onError(error)
            }
            while stopped.wait(timeout: .now() + pollInterval) == .timedOut {
                do {
                    let fresh = try absorb(from: store, now: Int64(time(nil)))
                    if !fresh.isEmpty { onRevoked(fresh) }
                } catch let error as StorageError where error.isBusy {
                    continue
                } catch {
                    onError(error)
                }
            }
        }
        thread.name = "session-revocations"
        thread.start()
    }

    public func stop() {
        stopped.signal()
        finished.wait()
    }

    /// Reads the revocations after the last one seen; returns the sessions among them.
    private func absorb(from store: Store, now: Int64) throws -> [Int64] {
        lock.lock()
        let after = through
        lock.unlock()
        let read = try store.revocations(after: after, now: now)
        lock.lock()
        defer { lock.unlock() }
        through = max(through, read.through)
        for (id, expiresAt) in read.sessions { revoked[id] = expiresAt }
        // Expired tokens are refused anyway: forget their sessions, bounding the set.
        if read.through != after, revoked.count > 1_000 { revoked = revoked.filter { $0.value > now } }
        return read.sessions.map(\.id)
    }
}
