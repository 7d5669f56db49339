import Foundation
import NIOCore

/// The users and chats a scenario needs, made through the public REST API like any client.
struct Fixtures {
    struct User: Sendable {
        let username: String
        let token: String
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let sessions: [HTTPSession]

    init(endpoint: Endpoint, group: EventLoopGroup, concurrency: Int) {
        sessions = (0..<max(1, concurrency)).map {
            HTTPSession(endpoint: endpoint, loop: group.next(), index: $0)
        }
    }

    /// `POST /login {username}` for `prefix_0` … `prefix_{count-1}`; creates each user.
    func login(prefix: String, count: Int) throws -> [User] {
        let names = (0..<count).map { "\(prefix)_\($0)" }
        let answers = try HTTPBatch.run(count: count, sessions: sessions) { index in
            .post("/login", json: #"{"username":"\#(names[index])"}"#)
        }
        return try zip(names, answers).map { name, answer in
            let object = try Self.object(answer, expecting: 200, what: "POST /login")
            guard let token = object["token"] as? String else { throw Failure(description: "POST /login: no token in \(answer.text)") }
            return User(username: name, token: token)
        }
    }

    /// `GET /users/:username` → each user's id.
    func userIDs(_ users: [User]) throws -> [Int64] {
        let answers = try HTTPBatch.run(count: users.count, sessions: sessions) { index in
            .get("/users/\(users[index].username)", token: users[index].token)
        }
        return try answers.map { try Self.id(in: $0, key: "id", what: "GET /users/:username") }
    }

    /// `POST /chats/initiate {target_username}` from user 2i to user 2i+1 → one chat id per pair.
    func directChats(pairing users: [User]) throws -> [Int64] {
        let answers = try HTTPBatch.run(count: users.count / 2, sessions: sessions) { pair in
            .post("/chats/initiate", json: #"{"target_username":"\#(users[2 * pair + 1].username)"}"#,
                  token: users[2 * pair].token)
        }
        return try answers.map { try Self.id(in: $0, key: "chat_id", what: "POST /chats/initiate") }
    }

    /// `POST /chats {name, participants}` by `creator` → the group's id.
    func groupChat(name: String, creator: User, participants: [Int64]) throws -> Int64 {
        try groupChats(count: 1, name: { _ in name }, creator: { _ in creator }, participants: participants)[0]
    }

    /// `count` groups, group `i` named `name(i)` and made by `creator(i)`, each with
    /// `participants` → their ids, in order.
    func groupChats(count: Int, name: @escaping @Sendable (Int) -> String, creator: @escaping @Sendable (Int) -> User,
                    participants: [Int64]) throws -> [Int64] {
        let list = participants.map(String.init).joined(separator: ",")
        let answers = try HTTPBatch.run(count: count, sessions: sessions) { index in
            .post("/chats", json: #"{"name":"\#(name(index))","participants":[\#(list)]}"#, token: creator(index).token)
        }
        return try answers.map { try Self.id(in: $0, key: "id", what: "POST /chats") }
    }

    /// `POST /chats/:id/messages {content}` by `sender` into each of `chatIDs` → the messages' ids.
    func postMessages(into chatIDs: [Int64], from sender: User, content: String) throws -> [Int64] {
        let answers = try HTTPBatch.run(count: chatIDs.count, sessions: sessions) { index in
            .post("/chats/\(chatIDs[index])/messages", json: #"{"content":"\#(content)"}"#, token: sender.token)
        }
        return try answers.map { try Self.id(in: $0, key: "id", what: "POST /chats/:id/messages") }
    }

    func close() {
        for session in sessions { _ = try? session.close().wait() }
    }

    private static func id(in answer: HTTPAnswer, key: String, what: String) throws -> Int64 {
        guard let id = (try object(answer, expecting: 200, what: what)[key] as? NSNumber)?.int64Value else {
            throw Failure(description: "\(what): no \(key) in \(answer.text.prefix(200))")
        }
        return id
    }

    private static func object(_ answer: HTTPAnswer, expecting status: Int, what: String) throws -> [String: Any] {
        guard answer.status == status || (status == 200 && answer.status == 201) else {
            throw Failure(description: "\(what) answered \(answer.status): \(answer.text.prefix(200))")
        }
        let bytes = Data(answer.body.readableBytesView)
        guard let object = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any] else {
            throw Failure(description: "\(what) answered no JSON object: \(answer.text.prefix(200))")
        }
        return object
    }
}
