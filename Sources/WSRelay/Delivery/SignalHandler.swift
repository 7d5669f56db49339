import Domain
import Foundation
import Logging
import Storage

/// Handles a round's signals on the storage thread: READ ops (stored, their READ events
/// then delivered like any other), TYPING ops (forwarded, never stored) and presence.
///
/// With several relays, TYPING and presence changes are also told to the others (`peers`),
/// which deliver them to their own sockets under the same throttles.
final class SignalHandler {
    /// At most one TYPING per user and chat is forwarded in this time; the rest are dropped.
    static let typingInterval: TimeInterval = 2
    /// At most one PRESENCE frame per user in this time; a change inside it goes out when it
    /// ends, if it still stands.
    static let presenceInterval: TimeInterval = 5

    private struct UserChat: Hashable {
        let userID: Int64
        let chatID: Int64
    }

    private let store: Store
    private let registry: ConnectionRegistry
    private let fanOut: FanOut
    private let peers: RelayPeers
    private let logger: Logger
    private var lastTyping: [UserChat: TimeInterval] = [:]
    /// The users this relay last recorded as holding a socket here.
    private var online: Set<Int64> = []
    /// The latest recorded presence of users whose frame is still to go out.
    private var unannounced: [Int64: Presence] = [:]
    private var announced: [Int64: (online: Bool, at: TimeInterval)] = [:]

    init(store: Store, registry: ConnectionRegistry, fanOut: FanOut, peers: RelayPeers, logger: Logger) {
        self.store = store
        self.registry = registry
        self.fanOut = fanOut
        self.peers = peers
        self.logger = logger
    }

    /// Handles `signals`; `joined` are the users registered this round (they may have come
    /// online). Errors for the senders go to `replies`.
    func handle(_ signals: [Signal], joined: [Int64], replies: inout [(ConnectionHandle, ServerFrame)],
                into outbox: inout Outbox) {
        var maybeChanged = joined
        let now = ProcessInfo.processInfo.systemUptime
        for signal in signals {
            switch signal {
            case .read(let sender, let userID, let chatID, let messageID):
                do {
                    _ = try store.markRead(chatID: chatID, userID: userID, messageID: messageID)
                } catch {
                    replies.append((sender, .refusal(error, nonce: nil, logger: logger)))
                }
            case .typing(let sender, let userID, let chatID):
                do {
                    try typing(userID: userID, chatID: chatID, now: now, forward: true, into: &outbox)
                } catch {
                    replies.append((sender, .refusal(error, nonce: nil, logger: logger)))
                }
            case .disconnected(let userID):
                maybeChanged.append(userID)
            case .peerTyping(let userID, let chatID):
                // Checked again here: the notification socket is a trust boundary too.
                try? typing(userID: userID, chatID: chatID, now: now, forward: false, into: &outbox)
            case .peerPresence(let userID):
                do {
                    unannounced[userID] = try store.presence(of: userID)
                } catch {
                    logger.error("reading presence failed", metadata: ["error": "\(error)"])
                }
            }
        }
        recordPresence(of: maybeChanged)
        announcePresence(now: now, into: &outbox)
    }

    /// Delivers a member's TYPING to the chat's other members here and, if `forward`, tells
    /// the other relays; at most one per user and chat per `typingInterval` on each relay.
    private func typing(userID: Int64, chatID: Int64, now: TimeInterval, forward: Bool,
                        into outbox: inout Outbox) throws {
        let members = try fanOut.members(of: chatID)
        guard members.contains(where: { $0.userID == userID }) else {
            throw MessengerError.forbidden("you are not a member of chat \(chatID)")
        }
        let key = UserChat(userID: userID, chatID: chatID)
        if let last = lastTyping[key], now - last < Self.typingInterval { return }
        lastTyping[key] = now
        if lastTyping.count > 100_000 { lastTyping = lastTyping.filter { now - $0.value < Self.typingInterval } }
        fanOut.sendEphemeral(.typing(chatID: chatID, userID: userID),
                             to: members.lazy.map(\.userID).filter { $0 != userID }, into: &outbox)
        if forward { peers.tell(.typing(chatID: chatID, userID: userID)) }
    }

    /// Records every change of this relay's share among `userIDs` in one transaction; a
    /// user whose presence across all relays changed with it is to be announced, here and by
    /// the other relays.
    private func recordPresence(of userIDs: [Int64]) {
        var changes: [(userID: Int64, online: Bool)] = []
        for userID in Set(userIDs) {
            let isOnline = registry.isConnected(userID)
            if isOnline != online.contains(userID) { changes.append((userID, isOnline)) }
        }
        guard !changes.isEmpty else { return }
        do {
            for (change, recorded) in zip(changes, try store.recordPresence(changes, relay: peers.instance)) {
                if change.online { online.insert(change.userID) } else { online.remove(change.userID) }
                // Online through another relay too: nothing changed for anyone else.
                guard recorded.changed else { continue }
                unannounced[change.userID] = recorded.presence
                peers.tell(.presence(userID: change.userID))
            }
        } catch {
            logger.error("recording presence failed", metadata: ["error": "\(error)"])
        }
    }

    /// Sends PRESENCE to the protocol-2 sockets of everyone sharing a chat with each user whose
    /// change is unannounced and whose interval has passed.
    private func announcePresence(now: TimeInterval, into outbox: inout Outbox) {
        for (userID, presence) in unannounced {
            let previous = announced[userID]
            if let previous, now - previous.at < Self.presenceInterval { continue }
            unannounced[userID] = nil
            if previous?.online == presence.online { continue }  // flapped back: nothing to say
            do {
                let contacts = try store.contacts(of: userID).filter { $0 != userID }
                fanOut.sendEphemeral(.presence(presence), to: contacts, into: &outbox)
                announced[userID] = (presence.online, now)
            } catch {
                logger.error("announcing presence failed", metadata: ["error": "\(error)"])
            }
        }
    }
}
