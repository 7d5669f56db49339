/// The kinds of persistent event, each with its audience rule (DESIGN, "One ordered event
/// stream"). A new kind is a new case here and in the code that writes it; delivery, resume
/// and `GET /events` follow from its audience.
public enum EventOp: String, Sendable, CaseIterable {
    case message = "MESSAGE"
    case messageEdited = "MESSAGE_EDITED"
    case messageDeleted = "MESSAGE_DELETED"
    case reaction = "REACTION"
    case read = "READ"
    case chat = "CHAT"
    case chatRemoved = "CHAT_REMOVED"
    case user = "USER"
}

/// Who may see an event.
public enum Audience: Sendable, Equatable {
    /// The chat's members who joined at or before the event.
    case chat(Int64)
    /// One user, on every device.
    case user(Int64)
    /// A user and everyone who shares a chat with them (a profile change).
    case contacts(Int64)

    public var column: String {
        switch self {
        case .chat: "chat"
        case .user: "user"
        case .contacts: "contacts"
        }
    }
}

/// What an event says, ready to encode: the entity it is about, read when it is delivered, or
/// the `d` it carries.
public enum EventBody: Sendable, Equatable {
    case message(Message)
    /// The chat; its protocol-2 shape is per member (unread count, role), so delivery renders
    /// it for each recipient.
    case chat(Chat)
    case user(User)
    /// A `d` stored with the event, as JSON.
    case data([UInt8])
}

/// One persistent event, as stored and delivered.
public struct Event: Sendable, Equatable {
    public let seq: Int64
    public let op: EventOp
    public let audience: Audience
    public let body: EventBody

    public init(seq: Int64, op: EventOp, audience: Audience, body: EventBody) {
        self.seq = seq
        self.op = op
        self.audience = audience
        self.body = body
    }
}

/// The protocol-2 frame of an event: `{"op": OP, "seq": N, "d": {...}}`.
public struct EventFrame<Payload: JSONEncodable>: JSONEncodable {
    public let op: EventOp
    public let seq: Int64
    public let payload: Payload

    public init(op: EventOp, seq: Int64, payload: Payload) {
        self.op = op
        self.seq = seq
        self.payload = payload
    }

    public func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("op", op.rawValue)
            json.field("seq", seq)
            json.field("d", payload)
        }
    }
}

/// A stored `d`, written as it is.
public struct RawJSON: JSONEncodable, Sendable {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    public func encode(to writer: inout JSONWriter) {
        writer.raw(bytes)
    }
}

extension Event {
    /// Whether the protocol-2 frame is the same for every recipient. A CHAT event's `d` is the
    /// chat as each member sees it (unread count, role), so it is not.
    public var hasSharedFrame: Bool {
        if case .chat = body { return false }
        return true
    }

    /// The protocol-2 frame's JSON; `view` renders a chat for the recipient.
    public func frame(view: (Chat) throws -> ChatView) rethrows -> [UInt8] {
        switch body {
        case .message(let message): JSONWriter.encode(EventFrame(op: op, seq: seq, payload: message.full))
        case .chat(let chat): JSONWriter.encode(EventFrame(op: op, seq: seq, payload: try view(chat)))
        case .user(let user): JSONWriter.encode(EventFrame(op: op, seq: seq, payload: user))
        case .data(let data): JSONWriter.encode(EventFrame(op: op, seq: seq, payload: RawJSON(data)))
        }
    }
}
