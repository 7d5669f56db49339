import Domain

/// A text frame from a client, parsed and validated.
enum ClientFrame: Equatable {
    /// `{"op":"IDENTIFY","d":{"token":…, "v"?: 2, "since"?: seq}}`.
    case identify(token: String, stream: StreamOptions)
    /// Seed 000: `{chat_id, content?, files?, nonce?}`.
    case send(chatID: Int64, draft: MessageDraft)
    /// Seed 001: `{receiver_username, content, nonce?}`.
    case sendToUser(username: String, draft: MessageDraft)
    /// `{"op":"READ","d":{chat_id, message_id}}`: move the read marker forward.
    case read(chatID: Int64, messageID: Int64)
    /// `{"op":"TYPING","d":{chat_id}}`: tell the chat's other members.
    case typing(chatID: Int64)

    /// A frame that cannot be acted on; `nonce` is echoed in the ERROR frame when known.
    struct Refusal: Error, Equatable {
        let message: String
        let nonce: String?
    }

    init(parsing bytes: some Collection<UInt8>) throws(Refusal) {
        let fields: JSONFields
        do {
            fields = try JSONFields(parsing: bytes)
        } catch {
            throw Refusal(message: error.message, nonce: nil)
        }
        let nonce = try? MessageDraft.nonce(in: fields)
        do {
            self = try Self.parse(fields)
        } catch {
            throw Refusal(message: error.message, nonce: nonce ?? nil)
        }
    }

    private static func parse(_ fields: JSONFields) throws(ValidationError) -> ClientFrame {
        if let op = try fields.optionalString("op") {
            switch op {
            case "IDENTIFY":
                guard let data = fields.members["d"], let inner = try? JSONFields(data),
                      let token = try? inner.string("token"), !token.isEmpty
                else { throw ValidationError("IDENTIFY needs d.token") }
                var stream = StreamOptions()
                if let version = inner.members["v"], version != .null {
                    guard case .int(let number) = version, let parsed = ProtocolVersion(rawValue: Int(number)) else {
                        throw ValidationError("IDENTIFY d.v must be 1 or 2")
                    }
                    stream.version = parsed
                }
                if let since = inner.members["since"], since != .null {
                    guard case .int(let seq) = since, seq >= 0 else {
                        throw ValidationError("IDENTIFY d.since must be an integer ≥ 0")
                    }
                    stream.since = seq
                }
                return .identify(token: token, stream: stream)
            case "READ":
                let inner = try Self.data(of: fields, op: op)
                return .read(chatID: try inner.id("chat_id"), messageID: try inner.id("message_id"))
            case "TYPING":
                return .typing(chatID: try Self.data(of: fields, op: op).id("chat_id"))
            default:
                throw ValidationError("unknown op \(op.prefix(32))")
            }
        }
        if fields.contains("chat_id") {
            return .send(chatID: try fields.id("chat_id"), draft: try MessageDraft(fields))
        }
        if fields.contains("receiver_username") {
            let username = try Username.validate(fields.string("receiver_username"))
            let draft = try MessageDraft(content: fields.string("content"), nonce: MessageDraft.nonce(in: fields))
            return .sendToUser(username: username, draft: draft)
        }
        throw ValidationError("expected a message with chat_id or receiver_username, or an op frame")
    }

    /// The `d` object of an op frame.
    private static func data(of fields: JSONFields, op: String) throws(ValidationError) -> JSONFields {
        guard let data = fields.members["d"], let inner = try? JSONFields(data) else {
            throw ValidationError("\(op) needs a d object")
        }
        return inner
    }
}

/// What a client asks of its socket's stream: the protocol, and where to resume. `since`
/// implies protocol 2.
struct StreamOptions: Sendable, Equatable {
    var version: ProtocolVersion = .v1
    var since: Int64? {
        didSet { if since != nil { version = .v2 } }
    }

    init(version: ProtocolVersion = .v1, since: Int64? = nil) {
        self.version = since == nil ? version : .v2
        self.since = since
    }

    /// From the upgrade request's `?v=` and `?since=`.
    init(query: [String: String]) throws(ValidationError) {
        self.init(version: try query["v"].map { v throws(ValidationError) in try ProtocolVersion(parsing: v) } ?? .v1,
                  since: try query["since"].map { s throws(ValidationError) in try StreamPosition.parse(s) })
    }

    /// These options, with what an IDENTIFY asked for on top.
    func merged(with identify: StreamOptions) -> StreamOptions {
        StreamOptions(version: max(version, identify.version), since: identify.since ?? since)
    }
}
