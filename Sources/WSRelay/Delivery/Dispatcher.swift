import Domain
import Foundation
import Logging
import NIOCore
import Storage
import Synchronization

/// A send received on a socket, waiting for the storage thread.
struct PendingSend: Sendable {
    enum Target: Sendable, Equatable {
        case chat(Int64)
        /// Seed 001: the direct chat with this user, created if needed.
        case user(String)
    }

    let sender: ConnectionHandle
    let senderID: Int64
    let target: Target
    let draft: MessageDraft
}

/// The relay's storage thread: commits sends in batches, and delivers every committed
/// message — its own and FCGIApp's — to every connection of every member, in id order.
///
/// One thread owns the database connection and the delivery cursor, which makes the order
/// and the "once per connection" rule simple: a message is fanned out exactly when the
/// cursor passes its id. Its own commits are delivered straight from memory when they
/// follow the cursor; anything else (a REST write, a lost notification, a gap) is read back
/// from the database, so nothing committed is ever skipped (DESIGN, invariant 2).
final class Dispatcher: @unchecked Sendable {
    // @unchecked: `pending`, `wakeRequested` and `stopping` are guarded by `condition`;
    // everything below "storage thread only" is touched by the storage thread alone.
    private let condition = NSCondition()
    private var pending: [PendingSend] = []
    private var joins: [Join] = []
    private var wakeRequested = false
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)

    private let limits: RelayLimits
    private let registry: ConnectionRegistry
    private let logger: Logger
    /// How often the database is checked for messages nobody notified us about.
    private let pollInterval: TimeInterval
    /// The least time between two rounds started by notifications alone. FCGIApp sends one
    /// per message; under 10,000 REST writes a second, a round per notification cost the
    /// relay a third of a core re-reading the newest ids. Sends and joins never wait for it.
    static let notificationRoundInterval: TimeInterval = 0.002
    /// The least time between the starts of two rounds that commit sends. A send arriving
    /// long after the last round goes at once; one arriving sooner waits for the rest of the
    /// interval and shares the round (one transaction, one wake-up per event loop). Under a
    /// steady 10,000 sends a second this took the p99 send → ACK from 18–50 to 20–30 ms
    /// (eight runs each, alternating builds) for about 1 ms more at the median and 0.03 cores
    /// less. Flat out, rounds last longer than this anyway. Joins never wait for it.
    static let sendRoundInterval: TimeInterval = 0.001

    /// A connection to register, and the delivery cursor when its client was accepted.
    private struct Join {
        let handle: ConnectionHandle
        let userID: Int64
        let since: Int64
    }

    /// `deliveredThrough`, published for the event loops.
    private let cursor: Atomic<Int64>

    // Storage thread only.
    private let store: Store
    private var deliveredThrough: Int64 {
        didSet { cursor.store(deliveredThrough, ordering: .releasing) }
    }
    private var chatsSeenThrough: Int64
    private var members: [Int64: [Int64]] = [:]
    private let allocator = ByteBufferAllocator()

    static let catchUpPageSize = 500
    static let maxCachedChats = 100_000

    init(store: Store, registry: ConnectionRegistry, limits: RelayLimits, logger: Logger,
         pollInterval: TimeInterval = 0.25) throws {
        self.store = store
        self.registry = registry
        self.limits = limits
        self.logger = logger
        self.pollInterval = pollInterval
        // Deliver from now on; history before start-up is for clients to fetch (after_id).
        let latest = try store.latestMessageID()
        cursor = Atomic(latest)
        deliveredThrough = latest
        chatsSeenThrough = try store.latestChatID()
    }

    func start() {
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.name = "relay-storage"
        thread.start()
    }

    /// Queues a send; `false` when the queue is full and the client should retry.
    func submit(_ send: PendingSend) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping, pending.count < limits.maxPendingSends else { return false }
        pending.append(send)
        // Only the first send wakes the thread: later ones join the round it is waiting for.
        if pending.count == 1 { condition.signal() }
        return true
    }

    /// The id of the last message fanned out. A connection accepted now is owed every
    /// message after it.
    var deliveryCursor: Int64 { cursor.load(ordering: .acquiring) }

    /// Registers `handle` for `userID`'s messages, first sending it every message after
    /// `since` that was fanned out before it was registered.
    ///
    /// Registration happens on this thread, between rounds, because it alone fans out: the
    /// connection gets each message once, either in the replay or live, with no gap between
    /// its handshake (when `since` was read) and its registration.
    func join(_ handle: ConnectionHandle, userID: Int64, since: Int64) {
        condition.lock()
        joins.append(Join(handle: handle, userID: userID, since: since))
        condition.signal()
        condition.unlock()
    }

    /// Asks for a catch-up read soon (a notification arrived): at once, or
    /// `notificationRoundInterval` after the previous round.
    func wake() {
        condition.lock()
        if !wakeRequested {
            wakeRequested = true
            condition.signal()
        }
        condition.unlock()
    }

    /// Commits and answers everything queued, then stops the thread.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
        finished.wait()
    }

    private func run() {
        var lastRound: TimeInterval = 0
        while true {
            condition.lock()
            while pending.isEmpty && joins.isEmpty && !stopping {
                if wakeRequested {
                    let due = lastRound + Self.notificationRoundInterval
                    let now = ProcessInfo.processInfo.systemUptime
                    if now >= due { break }
                    _ = condition.wait(until: Date(timeIntervalSinceNow: due - now))
                } else if !condition.wait(until: Date(timeIntervalSinceNow: pollInterval)) {
                    break  // the poll: look for messages nobody told us about
                }
            }
            while !pending.isEmpty && pending.count < limits.maxBatch && joins.isEmpty && !stopping {
                let due = lastRound + Self.sendRoundInterval
                let now = ProcessInfo.processInfo.systemUptime
                if now >= due { break }
                _ = condition.wait(until: Date(timeIntervalSinceNow: due - now))
            }
            let batch = Array(pending.prefix(limits.maxBatch))
            pending.removeFirst(batch.count)
            let joining = joins
            joins.removeAll()
            wakeRequested = false
            let done = stopping && pending.isEmpty
            condition.unlock()

            lastRound = ProcessInfo.processInfo.systemUptime
            process(batch, joining: joining)
            if done { return }
        }
    }

    /// One round: register joining connections, commit `batch`, announce new chats, deliver
    /// new messages, answer senders.
    private func process(_ batch: [PendingSend], joining: [Join]) {
        var outbox = Outbox()
        var replies: [(ConnectionHandle, ServerFrame)] = []
        var fresh: [Message] = []
        do {
            for join in joining { try register(join, into: &outbox) }
            fresh = try commit(batch, replies: &replies)
            try announceNewChats(into: &outbox)
            fresh.sort { $0.id < $1.id }
            if let first = fresh.first, first.id == deliveredThrough + 1,
               zip(fresh, fresh.dropFirst()).allSatisfy({ $0.id + 1 == $1.id }) {
                for message in fresh { try fanOut(message, into: &outbox) }
                deliveredThrough = fresh[fresh.count - 1].id
            } else if registry.isEmpty {
                // Nobody to deliver to: move the cursor without reading the messages. A
                // connection joining later replays from its own handshake cursor.
                deliveredThrough = max(deliveredThrough, try store.latestMessageID())
            } else {
                try catchUp(into: &outbox)
            }
        } catch {
            logger.error("relay storage round failed", metadata: ["error": "\(error)"])
        }
        for (handle, frame) in replies {
            outbox.add(handle, encode(frame))
        }
        outbox.flush()
    }

    /// Stores `batch` in one transaction; returns the newly stored messages and queues an
    /// ACK or ERROR for each sender.
    private func commit(_ batch: [PendingSend], replies: inout [(ConnectionHandle, ServerFrame)]) throws -> [Message] {
        guard !batch.isEmpty else { return [] }
        var outgoing: [OutgoingMessage] = []
        var owners: [PendingSend] = []
        for send in batch {
            do {
                let chatID: Int64
                switch send.target {
                case .chat(let id):
                    chatID = id
                case .user(let username):
                    guard let peer = try store.user(username: username) else {
                        throw MessengerError.notFound("user \(username) not found")
                    }
                    chatID = try store.initiateDirectChat(userID: send.senderID, peerID: peer.id).chatID
                }
                outgoing.append(OutgoingMessage(senderID: send.senderID, chatID: chatID, draft: send.draft))
                owners.append(send)
            } catch {
                replies.append((send.sender, .error(message: clientMessage(for: error), nonce: send.draft.nonce)))
            }
        }
        guard !outgoing.isEmpty else { return [] }
        var fresh: [Message] = []
        for (send, result) in zip(owners, store.post(outgoing)) {
            switch result {
            case .success(let posted):
                if posted.isNew { fresh.append(posted.message) }
                if let nonce = send.draft.nonce {
                    replies.append((send.sender, .ack(nonce: nonce, messageID: posted.message.id)))
                }
            case .failure(let error):
                replies.append((send.sender, .error(message: clientMessage(for: error), nonce: send.draft.nonce)))
            }
        }
        return fresh
    }

    private func register(_ join: Join, into outbox: inout Outbox) throws {
        // A socket that closed before its turn must not linger in the registry.
        guard join.handle.channel.isActive else { return }
        var after = join.since
        while after < deliveredThrough {
            let missed = try store.messages(visibleTo: join.userID, after: after, through: deliveredThrough,
                                            limit: Self.catchUpPageSize)
            for message in missed { outbox.add(join.handle, encodeMessage(message)) }
            guard let last = missed.last, missed.count == Self.catchUpPageSize else { break }
            after = last.id
        }
        registry.add(join.handle, userID: join.userID)
    }

    /// Tells members of chats created since the last round (by anyone) about them.
    private func announceNewChats(into outbox: inout Outbox) throws {
        while true {
            let chats = try store.chats(after: chatsSeenThrough, limit: Self.catchUpPageSize)
            for chat in chats {
                remember(chat.id, members: chat.participants)
                outbox.add(registry.connections(of: chat.participants), encode(ServerFrame.chat(chat)))
                chatsSeenThrough = chat.id
            }
            if chats.count < Self.catchUpPageSize { return }
        }
    }

    /// Delivers every committed message after the cursor, read back from the database.
    private func catchUp(into outbox: inout Outbox) throws {
        while true {
            let messages = try store.messages(after: deliveredThrough, limit: Self.catchUpPageSize)
            for message in messages {
                try fanOut(message, into: &outbox)
                deliveredThrough = message.id
            }
            if messages.count < Self.catchUpPageSize { return }
        }
    }

    private func fanOut(_ message: Message, into outbox: inout Outbox) throws {
        outbox.add(registry.connections(of: try membersOf(message.chatID)), encodeMessage(message))
    }

    /// Chat membership never changes after creation, so it is cached once read.
    private func membersOf(_ chatID: Int64) throws -> [Int64] {
        if let cached = members[chatID] { return cached }
        let loaded = try store.members(chatID: chatID)
        remember(chatID, members: loaded)
        return loaded
    }

    private func remember(_ chatID: Int64, members list: [Int64]) {
        if members.count >= Self.maxCachedChats { members.removeAll(keepingCapacity: true) }
        members[chatID] = list
    }

    private func encodeMessage(_ message: Message) -> ByteBuffer {
        var writer = JSONWriter(capacity: 256)
        message.encode(to: &writer)
        return TextFrame.encode(writer.bytes, allocator: allocator)
    }

    private func encode(_ frame: ServerFrame) -> ByteBuffer {
        TextFrame.encode(JSONWriter.encode(frame), allocator: allocator)
    }

    private func clientMessage(for error: any Error) -> String {
        switch error {
        case let refusal as MessengerError: return refusal.message
        case let storage as StorageError where storage.isBusy: return "server busy; retry"
        default:
            logger.error("send failed", metadata: ["error": "\(error)"])
            return "internal error; retry"
        }
    }
}
