import NIOConcurrencyHelpers

/// Which open sockets belong to which session, so that a revoked session's sockets can be
/// closed (4502) the moment the relay reads the revocation.
final class SessionSockets: Sendable {
    private let sockets = NIOLockedValueBox<[Int64: [ConnectionHandle]]>([:])

    func add(_ handle: ConnectionHandle, sessionID: Int64) {
        sockets.withLockedValue { $0[sessionID, default: []].append(handle) }
    }

    func remove(_ handle: ConnectionHandle, sessionID: Int64) {
        sockets.withLockedValue { table in
            table[sessionID]?.removeAll { $0 === handle }
            if table[sessionID]?.isEmpty == true { table[sessionID] = nil }
        }
    }

    /// Closes every socket of these sessions with `CloseCode.sessionRevoked`.
    func closeRevoked(_ sessionIDs: [Int64]) {
        let handles = sockets.withLockedValue { table in sessionIDs.flatMap { table[$0] ?? [] } }
        for handle in handles { handle.close(.sessionRevoked) }
    }
}
