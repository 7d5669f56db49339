import Domain
import NIOCore
import Storage

/// Delivers events to every connected socket allowed to see them, in the shape of each
/// socket's protocol. Storage thread only.
///
/// Who may see an event is its audience, resolved when it is delivered: the chat's members
/// from their `joined_seq` on, one user, or a user's contacts. Memberships are cached per
/// chat; every membership change is a CHAT event of that chat, and events are delivered in
/// seq order, so dropping the chat's entry when its CHAT event passes keeps the cache exact.
final class FanOut {
    private let store: Store
    private let registry: ConnectionRegistry
    private let encoder: EventEncoder
    private var memberships: [Int64: [Membership]] = [:]

    static let maxCachedChats = 100_000

    init(store: Store, registry: ConnectionRegistry, encoder: EventEncoder) {
        self.store = store
        self.registry = registry
        self.encoder = encoder
    }

    func deliver(_ event: Event, into outbox: inout Outbox) throws {
        if event.op == .chat, case .chat(let chatID) = event.audience { memberships[chatID] = nil }
        let recipients = registry.subscribers(of: try audience(of: event))
        guard !recipients.isEmpty else { return }
        var v1: [ConnectionHandle] = []
        var v2: [ConnectionHandle] = []
        for (userID, subscriber) in recipients {
            switch subscriber.version {
            case .v1:
                v1.append(subscriber.handle)
            case .v2 where event.hasSharedFrame:
                v2.append(subscriber.handle)
            case .v2:
                outbox.add(subscriber.handle, try encoder.v2Frame(event, for: userID))
            }
        }
        if !v1.isEmpty, let frame = encoder.v1Frame(event) { outbox.add(v1, frame) }
        // A shared frame does not depend on the recipient: any id renders it.
        if !v2.isEmpty { outbox.add(v2, try encoder.v2Frame(event, for: 0)) }
    }

    /// Sends an ephemeral frame (TYPING, PRESENCE: no seq, never replayed) to the protocol-2
    /// sockets of `userIDs`.
    func sendEphemeral(_ frame: ServerFrame, to userIDs: some Sequence<Int64>, into outbox: inout Outbox) {
        let handles = registry.subscribers(of: userIDs).filter { $0.subscriber.version == .v2 }.map(\.subscriber.handle)
        if !handles.isEmpty { outbox.add(handles, encoder.encode(frame)) }
    }

    /// The users who may see `event` now.
    private func audience(of event: Event) throws -> [Int64] {
        switch event.audience {
        case .chat(let chatID):
            return try members(of: chatID).lazy.filter { $0.joinedSeq <= event.seq }.map(\.userID)
        case .user(let userID):
            return [userID]
        case .contacts(let userID):
            return try store.contacts(of: userID)
        }
    }

    /// A chat's members, from the cache.
    func members(of chatID: Int64) throws -> [Membership] {
        if let cached = memberships[chatID] { return cached }
        let loaded = try store.memberships(chatID: chatID)
        if memberships.count >= Self.maxCachedChats { memberships.removeAll(keepingCapacity: true) }
        memberships[chatID] = loaded
        return loaded
    }
}
