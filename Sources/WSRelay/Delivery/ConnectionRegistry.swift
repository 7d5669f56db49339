import Domain
import NIOConcurrencyHelpers

/// A registered connection and the protocol its client speaks.
struct Subscriber: Sendable {
    let handle: ConnectionHandle
    let version: ProtocolVersion
}

/// Who is connected: user id → that user's open connections (one per device).
///
/// One lock around one dictionary; fan-out takes it once per event for all recipients.
final class ConnectionRegistry: Sendable {
    private let connections = NIOLockedValueBox<[Int64: [Subscriber]]>([:])

    func add(_ handle: ConnectionHandle, userID: Int64, version: ProtocolVersion = .v1) {
        connections.withLockedValue { $0[userID, default: []].append(Subscriber(handle: handle, version: version)) }
    }

    func remove(_ handle: ConnectionHandle, userID: Int64) {
        connections.withLockedValue { table in
            table[userID]?.removeAll { $0.handle === handle }
            if table[userID]?.isEmpty == true { table[userID] = nil }
        }
    }

    /// Every open connection of every user in `userIDs`, with whose it is.
    func subscribers(of userIDs: some Sequence<Int64>) -> [(userID: Int64, subscriber: Subscriber)] {
        connections.withLockedValue { table in
            var result: [(Int64, Subscriber)] = []
            for userID in userIDs {
                if let subscribers = table[userID] {
                    for subscriber in subscribers { result.append((userID, subscriber)) }
                }
            }
            return result
        }
    }

    func isConnected(_ userID: Int64) -> Bool {
        connections.withLockedValue { $0[userID] != nil }
    }

    func all() -> [ConnectionHandle] {
        connections.withLockedValue { $0.values.joined().map(\.handle) }
    }

    var isEmpty: Bool {
        connections.withLockedValue { $0.isEmpty }
    }

    var count: Int {
        connections.withLockedValue { $0.values.reduce(0) { $0 + $1.count } }
    }
}
