/// A hint from FCGIApp, or from another relay, that something connected users must see was
/// committed; between relays also what is never stored (TYPING) and presence changes.
///
/// Hints only: the relay reads the committed rows from the database, so a lost, late or
/// repeated notification never loses or doubles anything (DESIGN, invariant 2). A lost
/// `typing` is a lost TYPING frame, which the protocol allows; a lost `presence` leaves the
/// other relay's PRESENCE frames late, never `GET /presence` wrong.
public enum RelayNotification: Sendable, Equatable {
    /// New messages exist in `chatID`, up to at least `messageID`.
    case message(chatID: Int64, messageID: Int64)
    /// `chatID` was created or changed.
    case chat(chatID: Int64)
    /// `userID`'s profile changed.
    case user(userID: Int64)
    /// Another relay committed events (sends, READs).
    case events
    /// Another relay forwarded a member's TYPING in `chatID` (already throttled there).
    case typing(chatID: Int64, userID: Int64)
    /// Another relay recorded that `userID` came online or went offline.
    case presence(userID: Int64)

    /// The datagram: a small JSON object.
    public var encoded: [UInt8] {
        var writer = JSONWriter(capacity: 64)
        writer.object { json in
            switch self {
            case .message(let chatID, let messageID):
                json.field("type", "message")
                json.field("chat_id", chatID)
                json.field("message_id", messageID)
            case .chat(let chatID):
                json.field("type", "chat")
                json.field("chat_id", chatID)
            case .user(let userID):
                json.field("type", "user")
                json.field("user_id", userID)
            case .events:
                json.field("type", "events")
            case .typing(let chatID, let userID):
                json.field("type", "typing")
                json.field("chat_id", chatID)
                json.field("user_id", userID)
            case .presence(let userID):
                json.field("type", "presence")
                json.field("user_id", userID)
            }
        }
        return writer.bytes
    }

    public init?(decoding bytes: some Collection<UInt8>) {
        guard let fields = try? JSONFields(parsing: bytes), let type = try? fields.string("type") else { return nil }
        switch type {
        case "message":
            guard let chatID = try? fields.id("chat_id"), let messageID = try? fields.id("message_id") else { return nil }
            self = .message(chatID: chatID, messageID: messageID)
        case "chat":
            guard let chatID = try? fields.id("chat_id") else { return nil }
            self = .chat(chatID: chatID)
        case "user":
            guard let userID = try? fields.id("user_id") else { return nil }
            self = .user(userID: userID)
        case "events":
            self = .events
        case "typing":
            guard let chatID = try? fields.id("chat_id"), let userID = try? fields.id("user_id") else { return nil }
            self = .typing(chatID: chatID, userID: userID)
        case "presence":
            guard let userID = try? fields.id("user_id") else { return nil }
            self = .presence(userID: userID)
        default:
            return nil
        }
    }
}
