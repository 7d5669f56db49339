import Domain

/// A text frame from a client, parsed and validated.
enum ClientFrame: Equatable {
    /// `{"op":"IDENTIFY","d":{"token":…}}`.
    case identify(token: String)
    /// Seed 000: `{chat_id, content?, files?, nonce?}`.
    case send(chatID: Int64, draft: MessageDraft)
    /// Seed 001: `{receiver_username, content, nonce?}`.
    case sendToUser(username: String, draft: MessageDraft)

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
                return .identify(token: token)
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
}
