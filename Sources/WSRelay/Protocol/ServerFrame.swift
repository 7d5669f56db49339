import Domain

/// An `{"op": …, "d": …}` frame from the relay. Messages themselves go out as bare seed
/// message objects, not through this type.
enum ServerFrame: JSONEncodable {
    case ready(userID: Int64)
    case ack(nonce: String, messageID: Int64)
    case error(message: String, nonce: String?)
    case chat(Chat)

    func encode(to writer: inout JSONWriter) {
        writer.object { json in
            switch self {
            case .ready(let userID):
                json.field("op", "READY")
                json.key("d")
                json.object { $0.field("user_id", userID) }
            case .ack(let nonce, let messageID):
                json.field("op", "ACK")
                json.key("d")
                json.object { d in
                    d.field("nonce", nonce)
                    d.field("id", messageID)
                }
            case .error(let message, let nonce):
                json.field("op", "ERROR")
                json.key("d")
                json.object { d in
                    d.field("message", message)
                    d.field("nonce", nonce)
                }
            case .chat(let chat):
                json.field("op", "CHAT")
                json.field("d", chat)
            }
        }
    }
}
