import Domain
import Foundation
@testable import Storage
import Testing

/// Every statement the Storage layer runs against `messages` is read by an index, never by a
/// full scan: at ten million messages a `SCAN messages` is seconds per request.
///
/// The workload below calls every Store method that reads or writes messages; the
/// statements come from the connection's own cache (`preparedSQL`), so a query is explained
/// exactly as it runs. So that a new query cannot be forgotten, every SQL literal in
/// `Sources/Storage` that names `messages` must be among those statements.
@Suite struct QueryPlanTests {
    @Test func noStatementScansMessages() throws {
        let database = try TestDatabase()
        let store = try database.migratedStore()
        try Self.workload(store)
        let statements = store.database.sqliteConnection!.preparedSQL.filter(Self.readsMessages)
        #expect(statements.count >= 12, "the workload ran only \(statements.count) statements on messages")

        var scans: [String] = []
        for sql in statements {
            let aliases = Self.aliases(of: sql)
            let plan = try store.database.statement("EXPLAIN QUERY PLAN " + sql).rows { $0.string(3) }
            for detail in plan {
                let words = detail.split(separator: " ")
                if words.count >= 2, words[0] == "SCAN", aliases.contains(String(words[1])) {
                    scans.append("\(detail)\n    in: \(Self.normalized(sql))")
                }
            }
        }
        #expect(scans.isEmpty, "full scans of messages:\n\(scans.joined(separator: "\n"))")
    }

    @Test func everyQueryOnMessagesIsInTheWorkload() throws {
        let database = try TestDatabase()
        let store = try database.migratedStore()
        try Self.workload(store)
        let ran = store.database.sqliteConnection!.preparedSQL.map(Self.normalized)
        var missing: [String] = []
        let literals = try Self.sqlLiterals()
        #expect(literals.count >= 10, "found only \(literals.count) SQL literals on messages in Sources/Storage")
        for literal in literals {
            // The parts between interpolations, each of which must be in a statement that ran.
            let fragments = literal.split(separator: /\\\([^)]*(\([^)]*\))?[^)]*\)/).map { Self.normalized(String($0)) }
            for fragment in fragments where fragment.count >= 8 {
                if !ran.contains(where: { $0.contains(fragment) }) {
                    missing.append(fragment)
                }
            }
        }
        #expect(missing.isEmpty, "queries on messages the workload never runs (call them in workload()):\n\(missing.joined(separator: "\n"))")
    }

    /// Calls every Store method that touches messages, on every path (before/after pages, a
    /// repeated nonce, batch posts, edits, deletions, reactions, reads, the chat list, the
    /// event replay, search).
    static func workload(_ store: Store) throws {
        let users = try store.users("alice", "bob", "carol")
        let (alice, bob, carol) = (users[0], users[1], users[2])
        let direct = try store.initiateDirectChat(userID: alice.id, peerID: bob.id).chatID
        let group = try store.createGroup(creatorID: carol.id, name: "G", participants: [alice.id, bob.id]).id
        let file = try store.upload(by: alice.id, name: "plan.png")
        var ids: [Int64] = []
        for index in 0..<30 {
            let chat = index % 3 == 0 ? group : direct
            let sender = index % 2 == 0 ? alice : bob
            ids.append(try store.send("hello plan \(index)", from: sender.id, to: chat).message.id)
        }
        let withFile = try store.send("file", from: alice.id, to: direct, files: [.id(file.id)], nonce: "n1")
        _ = try store.send("file", from: alice.id, to: direct, files: [.id(file.id)], nonce: "n1")  // the nonce again
        _ = try store.post(OutgoingMessage(senderID: bob.id, chatID: direct,
                                           draft: MessageDraft(content: "re", replyToID: withFile.message.id)))
        _ = store.post([OutgoingMessage(senderID: alice.id, chatID: group, draft: try MessageDraft(content: "batch 1")),
                        OutgoingMessage(senderID: carol.id, chatID: group, draft: try MessageDraft(content: "batch 2"))])

        _ = try store.messages(chatID: direct, query: MessageQuery())
        _ = try store.messages(chatID: direct, query: MessageQuery(limit: 5, beforeID: ids[20]))
        _ = try store.messages(chatID: direct, query: MessageQuery(limit: 5, afterID: ids[3]))
        _ = try store.messages(chatID: direct, query: MessageQuery(limit: 5, beforeID: ids[20], afterID: ids[3]))
        _ = try store.messages(ids: Array(ids.prefix(5)))
        _ = try store.lastMessage(chatID: group)
        _ = try store.message(id: ids[1])

        _ = try store.editMessage(chatID: direct, messageID: ids[1], by: bob.id, content: "edited plan")
        try store.setReaction(chatID: direct, messageID: ids[2], by: bob.id, emoji: "👍", present: true)
        try store.setReaction(chatID: direct, messageID: ids[2], by: bob.id, emoji: "👍", present: false)
        try store.deleteMessage(chatID: direct, messageID: ids[4], by: alice.id)
        _ = try store.markRead(chatID: direct, userID: bob.id, messageID: ids[10])
        _ = try store.receipts(chatID: direct, userID: bob.id)

        _ = try store.chatViews(forUser: alice.id)
        if let chat = try store.chat(id: group) { _ = try store.chatView(chat, for: bob.id) }
        _ = try store.events(visibleTo: bob.id, after: 0, through: store.latestSeq())
        _ = try store.events(after: 0, limit: 50)

        let query = try SearchQuery(parsing: "hello pla*")
        _ = try store.search(query, userID: alice.id)
        _ = try store.search(query, userID: alice.id, chatID: group, beforeID: ids[20], limit: 5)
        try store.removeMember(chatID: group, userID: bob.id, by: bob.id)
        _ = try store.pruneEvents(olderThan: 0, limit: 100)
    }

    /// Statements that name the messages table (not message_files or messages_fts).
    static func readsMessages(_ sql: String) -> Bool {
        sql.contains(/\bmessages\b(?!_)/)
    }

    /// The names `messages` goes by in `sql`: itself and its aliases (`FROM messages x`).
    static func aliases(of sql: String) -> Set<String> {
        let keywords: Set<String> = ["WHERE", "SET", "ON", "JOIN", "LEFT", "INNER", "ORDER", "GROUP", "LIMIT", "VALUES",
                                     "USING", "AND", "OR", "WHEN", "UNION"]
        var names: Set<String> = ["messages"]
        for match in sql.matches(of: /\bmessages\s+(?:AS\s+)?([A-Za-z_]\w*)/) {
            let name = String(match.output.1)
            if !keywords.contains(name.uppercased()) { names.insert(name) }
        }
        return names
    }

    static func normalized(_ text: String) -> String {
        text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    /// The string literals of `Sources/Storage` that name `messages` as a table, or that
    /// interpolate `liveMessages` (a subquery on it).
    static func sqlLiterals() throws -> [String] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/Storage")
        guard let files = FileManager.default.enumerator(atPath: root.path) else { return [] }
        var literals: [String] = []
        for case let file as String in files where file.hasSuffix(".swift") {
            var source = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
            for match in source.matches(of: /"""\n((?:.|\n)*?)"""/) { literals.append(String(match.output.1)) }
            source.replace(/"""\n(?:.|\n)*?"""/, with: "")
            for match in source.matches(of: /"((?:[^"\\\n]|\\.)*)"/) {
                literals.append(String(match.output.1).replacing("\\\"", with: "\""))
            }
        }
        return literals.filter { $0.contains(/\b(FROM|JOIN|UPDATE|INTO)\s+messages\b(?!_)/) || $0.contains("liveMessages") }
    }
}
