import Domain
import Logging
import Storage

/// Stores a round's sends in one transaction (group commit) and answers each sender exactly
/// once: an ACK after the commit when the send has a nonce, or an ERROR with its nonce when it
/// was refused or the commit failed — whatever failed, no send goes unanswered.
///
/// With `sendLimit` (`RATE_SEND`), every send takes a token from its sender's bucket — the
/// one FCGIApp's REST sends draw from too — inside the same transaction; a send over the limit
/// is answered with ERROR and `retry_after`, and stores nothing.
struct CommitRound {
    let store: Store
    let logger: Logger
    /// Commit duration and batch size of each round.
    var metrics: DatabaseMetrics = .disabled
    var sendLimit: RateLimit? = nil

    struct Outcome {
        /// One answer per send that needs one, in the order of the sends.
        var replies: [(ConnectionHandle, ServerFrame)] = []
        /// The messages this round stored, with the seqs of their MESSAGE events, ascending.
        var committed: [(seq: Int64, message: Message)] = []
    }

    func commit(_ sends: [PendingSend]) -> Outcome {
        var outcome = Outcome()
        guard !sends.isEmpty else { return outcome }
        // The busy timeout counts from the oldest send's arrival: a send that waited behind a
        // round stuck at a held lock (or behind other writes of this thread) gets its ERROR
        // within the timeout, not a timeout per round it waited through.
        let connection = store.database
        let oldest = sends.map(\.queuedAt).min()!
        let (seconds, attoseconds) = (ContinuousClock.now - oldest).components
        let waited = Int(seconds) * 1_000 + Int(attoseconds / 1_000_000_000_000_000)
        let remaining = Int(connection.busyTimeoutMilliseconds) - waited
        guard remaining > 0 else {
            let busy = StorageError.busyBeforeStart(waitedMilliseconds: waited)
            outcome.replies = sends.map { ($0.sender, refusal(busy, nonce: $0.draft.nonce)) }
            return outcome
        }
        connection.setBusyWait(milliseconds: Int32(remaining))
        defer { connection.setBusyWait(milliseconds: connection.busyTimeoutMilliseconds) }
        var outgoing: [OutgoingMessage] = []
        var owners: [PendingSend] = []
        for send in sends {
            do {
                outgoing.append(OutgoingMessage(senderID: send.senderID, chatID: try chatID(of: send), draft: send.draft))
                owners.append(send)
            } catch {
                outcome.replies.append((send.sender, refusal(error, nonce: send.draft.nonce)))
            }
        }
        let results = outgoing.isEmpty ? [] : metrics.commit(count: outgoing.count) {
            store.post(outgoing, sendLimit: sendLimit)
        }
        for (send, result) in zip(owners, results) {
            switch result {
            case .success(let posted):
                if let seq = posted.seq { outcome.committed.append((seq, posted.message)) }
                if let nonce = send.draft.nonce {
                    outcome.replies.append((send.sender, .ack(nonce: nonce, messageID: posted.message.id)))
                }
            case .failure(let error):
                outcome.replies.append((send.sender, refusal(error, nonce: send.draft.nonce)))
            }
        }
        outcome.committed.sort { $0.seq < $1.seq }
        return outcome
    }

    /// The chat a send goes to; seed 001's sends name a user, whose direct chat is created if
    /// needed (in a transaction of its own, with its CHAT event).
    private func chatID(of send: PendingSend) throws -> Int64 {
        switch send.target {
        case .chat(let id):
            return id
        case .user(let username):
            guard let peer = try store.user(username: username) else {
                throw MessengerError.notFound("user \(username) not found")
            }
            // A send over the limit must not create the chat either: nothing is stored.
            if let sendLimit, let refusal = try store.peekRateToken(sendLimit, .send, key: String(send.senderID)) {
                throw MessengerError.rateLimited(refusal)
            }
            return try store.initiateDirectChat(userID: send.senderID, peerID: peer.id).chatID
        }
    }

    private func refusal(_ error: any Error, nonce: String?) -> ServerFrame {
        .refusal(error, nonce: nonce, logger: logger)
    }
}

extension ServerFrame {
    /// The ERROR frame for a send or op that failed: a refusal's own reason, "server busy;
    /// retry" when the database stayed locked, else an internal error (logged).
    static func refusal(_ error: any Error, nonce: String?, logger: Logger) -> ServerFrame {
        switch error {
        case let refusal as MessengerError:
            return .error(message: refusal.message, nonce: nonce,
                          retryAfter: refusal.retryAfter.map { RateLimited(retryAfter: $0, what: "").retryAfterMilliseconds })
        case let storage as StorageError where storage.isBusy:
            return .error(message: "server busy; retry", nonce: nonce)
        case let storage as StorageError where storage.isDiskFull:
            logger.error("request failed: disk full", metadata: ["error": "\(storage)"])
            return .error(message: "server disk full; retry later", nonce: nonce)
        case let storage as StorageError where storage.isUnavailable:
            logger.error("request failed: the database is unavailable", metadata: ["error": "\(storage)"])
            return .error(message: "database unavailable; retry", nonce: nonce)
        default:
            logger.error("request failed", metadata: ["error": "\(error)"])
            return .error(message: "internal error; retry", nonce: nonce)
        }
    }
}
