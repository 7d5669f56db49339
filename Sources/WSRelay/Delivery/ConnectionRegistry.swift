import NIOConcurrencyHelpers

/// Who is connected: user id → that user's open connections (one per device).
///
/// One lock around one dictionary; fan-out takes it once per message for all members.
final class ConnectionRegistry: Sendable {
    private let connections = NIOLockedValueBox<[Int64: [ConnectionHandle]]>([:])

    func add(_ handle: ConnectionHandle, userID: Int64) {
        connections.withLockedValue { $0[userID, default: []].append(handle) }
    }

    func remove(_ handle: ConnectionHandle, userID: Int64) {
        connections.withLockedValue { table in
            table[userID]?.removeAll { $0 === handle }
            if table[userID]?.isEmpty == true { table[userID] = nil }
        }
    }

    /// Every open connection of every user in `userIDs`.
    func connections(of userIDs: [Int64]) -> [ConnectionHandle] {
        connections.withLockedValue { table in
            var result: [ConnectionHandle] = []
            for userID in userIDs {
                if let handles = table[userID] { result.append(contentsOf: handles) }
            }
            return result
        }
    }

    func all() -> [ConnectionHandle] {
        connections.withLockedValue { Array($0.values.joined()) }
    }

    var isEmpty: Bool {
        connections.withLockedValue { $0.isEmpty }
    }

    var count: Int {
        connections.withLockedValue { $0.values.reduce(0) { $0 + $1.count } }
    }
}
