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
        return try answers.map { answer in
            let object = try Self.object(answer, expecting: 200, what: "GET /users/:username")
            guard let id = (object["id"] as? NSNumber)?.int64Value else {
                throw Failure(description: "GET /users/:username: no id in \(answer.text)")
            }
            return id
        }
    }

    /// `POST /chats/initiate {target_username}` from user 2i to user 2i+1 → one chat id per pair.
    func directChats(pairing users: [User]) throws -> [Int64] {
        let answers = try HTTPBatch.run(count: users.count / 2, sessions: sessions) { pair in
            .post("/chats/initiate", json: #"{"target_username":"\#(users[2 * pair + 1].username)"}"#,
                  token: users[2 * pair].token)
        }
        return try answers.map { answer in
            let object = try Self.object(answer, expecting: 200, what: "POST /chats/initiate")
            guard let id = (object["chat_id"] as? NSNumber)?.int64Value else {
                throw Failure(description: "POST /chats/initiate: no chat_id in \(answer.text)")
            }
            return id
        }
    }

    /// `POST /chats {name, participants}` by `creator` → the group's id.
    func groupChat(name: String, creator: User, participants: [Int64]) throws -> Int64 {
        let list = participants.map(String.init).joined(separator: ",")
        let answer = try sessions[0].request(
            .post("/chats", json: #"{"name":"\#(name)","participants":[\#(list)]}"#, token: creator.token)
        ).wait()
        let object = try Self.object(answer, expecting: 200, what: "POST /chats")
        guard let id = (object["id"] as? NSNumber)?.int64Value else {
            throw Failure(description: "POST /chats: no id in \(answer.text)")
        }
        return id
    }

    func close() {
        for session in sessions { _ = try? session.close().wait() }
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
