import Domain
import Storage

/// Seed 001, the earlier API: messages addressed by username, kept working on top of
/// direct chats.
enum LegacyRoutes {
    /// `POST /send {receiver_username, content}` → `{"status":"sent"}`, into the direct chat
    /// with that user (created if needed), and pushed live.
    @Sendable static func send(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        let fields = try request.jsonFields()
        let name = try Username.validate(fields.string("receiver_username"))
        let draft = try MessageDraft(content: fields.string("content"), nonce: MessageDraft.nonce(in: fields))
        guard let receiver = try context.store.user(username: name) else {
            throw HTTPError(.notFound, "user \(name) not found")
        }
        let sendLimit = context.configuration.rateLimits.send
        let (chat, posted) = try context.writer.perform { store in
            // A send over the limit must not create the chat either: nothing is stored.
            if let sendLimit, let refusal = try store.peekRateToken(sendLimit, .send, key: String(user.id)) {
                throw HTTPError.rateLimited(refusal)
            }
            let chat = try store.initiateDirectChat(userID: user.id, peerID: receiver.id)
            let outgoing = OutgoingMessage(senderID: user.id, chatID: chat.chatID, draft: draft)
            return (chat, try store.post(outgoing, sendLimit: sendLimit))
        }
        if chat.created { context.notify(.chat(chatID: chat.chatID)) }
        if posted.isNew { context.notify(.message(chatID: chat.chatID, messageID: posted.message.id)) }
        return .json(SentReceipt())
    }

    /// `GET /history/:username` → the direct chat with that user, in the 001 shape.
    @Sendable static func history(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        let name = try Username.validate(request.parameters["username"] ?? "")
        let query = try request.messageQuery()
        guard let peer = try context.store.user(username: name) else {
            throw HTTPError(.notFound, "user \(name) not found")
        }
        guard let chatID = try context.store.directChatID(between: user.id, and: peer.id) else {
            return .json([LegacyMessage]())
        }
        let messages = try context.store.messages(chatID: chatID, query: query)
        return .json(messages.map { LegacyMessage($0, userID: user.id, peerID: peer.id) })
    }
}

private struct SentReceipt: JSONEncodable {
    func encode(to writer: inout JSONWriter) {
        writer.object { $0.field("status", "sent") }
    }
}
