import Domain
import Storage

/// An `{"op": …, "d": …}` frame from the relay that is not an event. Events go out through
/// `EventEncoder`: on protocol 1 messages as bare seed objects, on protocol 2 with their seq.
enum ServerFrame: JSONEncodable {
    /// `seq` on protocol 2 only: where the socket's stream continues from.
    case ready(userID: Int64, seq: Int64? = nil)
    /// Protocol 2: events after the client's `since` are gone (pruned) or it is ahead of the
    /// stream; refetch state over REST and continue from `seq`.
    case resync(seq: Int64)
    case ack(nonce: String, messageID: Int64)
    /// `retryAfter` (seconds) only for a refusal by a rate limit.
    case error(message: String, nonce: String?, retryAfter: Double? = nil)
    case chat(Chat)
    /// Protocol 2, ephemeral (no seq, never replayed): someone is typing in a chat.
    case typing(chatID: Int64, userID: Int64)
    /// Protocol 2, ephemeral: someone came online or went offline.
    case presence(Presence)

    func encode(to writer: inout JSONWriter) {
        writer.object { json in
            switch self {
            case .ready(let userID, let seq):
                json.field("op", "READY")
                json.key("d")
                json.object { d in
                    d.field("user_id", userID)
                    if let seq { d.field("seq", seq) }
                }
            case .resync(let seq):
                json.field("op", "RESYNC")
                json.key("d")
                json.object { $0.field("seq", seq) }
            case .ack(let nonce, let messageID):
                json.field("op", "ACK")
                json.key("d")
                json.object { d in
                    d.field("nonce", nonce)
                    d.field("id", messageID)
                }
            case .error(let message, let nonce, let retryAfter):
                json.field("op", "ERROR")
                json.key("d")
                json.object { d in
                    d.field("message", message)
                    d.field("nonce", nonce)
                    if let retryAfter {
                        d.key("retry_after")
                        d.number(retryAfter)
                    }
                }
            case .chat(let chat):
                json.field("op", "CHAT")
                json.field("d", chat)
            case .typing(let chatID, let userID):
                json.field("op", "TYPING")
                json.key("d")
                json.object { d in
                    d.field("chat_id", chatID)
                    d.field("user_id", userID)
                }
            case .presence(let presence):
                json.field("op", "PRESENCE")
                json.field("d", presence)
            }
        }
    }
}
