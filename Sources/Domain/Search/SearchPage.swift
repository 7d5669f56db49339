/// The answer to `GET /search`: matching messages newest first (full shapes), and the
/// `before_id` of the next page, null when this is the last.
public struct SearchPage: Sendable, Equatable, JSONEncodable {
    public let messages: [Message]
    public let nextBeforeID: Int64?

    public init(messages: [Message], nextBeforeID: Int64?) {
        self.messages = messages
        self.nextBeforeID = nextBeforeID
    }

    public func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.key("messages")
            json.array(messages.map(\.full))
            json.field("next_before_id", nextBeforeID)
        }
    }
}
