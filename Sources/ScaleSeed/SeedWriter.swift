import Foundation
import Storage

/// Writes the plan's rows. One connection, no journal and no fsync while seeding (a failed
/// seed is started over, never repaired), then WAL as the servers expect.
final class SeedWriter {
    private let connection: Connection
    private let plan: SeedPlan
    private var random: SeedRandom
    private static let rowsPerTransaction = 250_000

    init(path: String, plan: SeedPlan) throws {
        connection = try Connection(path: path)
        self.plan = plan
        random = SeedRandom(seed: plan.seed)
        try connection.execute("PRAGMA journal_mode = DELETE")
        try connection.execute("PRAGMA journal_mode = OFF")
        try connection.execute("PRAGMA synchronous = OFF")
        try connection.execute("PRAGMA foreign_keys = OFF")
        try connection.execute("PRAGMA cache_size = -1048576")  // 1 GB: the indexes stay in memory
        try connection.execute("PRAGMA temp_store = MEMORY")
    }

    /// Applies `NNN_*.sql` up to `through` (default: all but the newest) as the Migrator
    /// would, recording each in `schema_migrations`.
    func applyMigrations(directory: String, through: Int64?) throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasSuffix(".sql") }
            .compactMap { name in Int64(name.prefix(while: \.isNumber)).map { ($0, name) } }
            .sorted { $0.0 < $1.0 }
        guard let newest = files.last?.0 else { throw SeedError("no migrations in \(directory)") }
        let last = through ?? newest - 1
        try connection.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    INTEGER PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
            )
            """)
        for (version, name) in files where version <= last {
            guard let sql = FileManager.default.contents(atPath: directory + "/" + name) else {
                throw SeedError("cannot read \(name)")
            }
            try connection.write {
                try connection.execute(String(decoding: sql, as: UTF8.self))
                try connection.statement("INSERT INTO schema_migrations (version, name) VALUES (?, ?)")
                    .run([.integer(version), .text(name)])
            }
        }
        schemaVersion = last
    }

    private var schemaVersion: Int64 = 0

    /// Users, chats, messages (with the newest as events), members with read markers.
    func write() throws -> [String: Any] {
        let vocabulary = Vocabulary(random: &random)
        let now = Int64(Date().timeIntervalSince1970)
        let start = now - 365 * 86_400
        let startTime = SeedTime.rfc3339(start)

        progress("users: \(plan.users)")
        try connection.write {
            let insert = try connection.statement("INSERT INTO users (id, username, created_at) VALUES (?, ?, ?)")
            for id in 1...Int64(plan.users) {
                try insert.run([.integer(id), .text("u\(id)"), .text(startTime)])
            }
        }

        progress("chats: \(plan.chats)")
        var members: [[Int64]] = [[]]  // index = chat id
        var isGroup = [false, true]
        members.reserveCapacity(plan.chats + 1)
        try connection.write {
            let group = try connection.statement("""
                INSERT INTO chats (id, chat_type, name, creator_id, created_at) VALUES (?, 'group', ?, ?, ?)
                """)
            let direct = try connection.statement("""
                INSERT INTO chats (id, chat_type, creator_id, direct_low, direct_high, created_at)
                VALUES (?, 'direct', ?, ?, ?, ?)
                """)
            var pairs = Set<UInt64>()
            members.append(Array(1...Int64(plan.bigGroupMembers)))
            try group.run([.integer(SeedPlan.bigGroupID), .text("the big group"), .integer(SeedPlan.busyUserID),
                           .text(startTime)])
            for id in 2...Int64(plan.chats) {
                let pair: (Int64, Int64)
                if id <= Int64(plan.busyChats) + 1 {
                    pair = (SeedPlan.busyUserID, id)
                } else if id % 20 == 0 {
                    var set = Set<Int64>()
                    let size = 3 + random.below(10)
                    while set.count < size { set.insert(Int64(1 + random.below(plan.users))) }
                    let list = set.sorted()
                    members.append(list)
                    isGroup.append(true)
                    try group.run([.integer(id), .text("group \(id)"), .integer(list[0]), .text(startTime)])
                    continue
                } else {
                    while true {
                        let a = Int64(2 + random.below(plan.users - 1)), b = Int64(2 + random.below(plan.users - 1))
                        guard a != b else { continue }
                        let low = min(a, b), high = max(a, b)
                        if pairs.insert(UInt64(low) << 32 | UInt64(high)).inserted {
                            pair = (low, high)
                            break
                        }
                    }
                }
                members.append([pair.0, pair.1])
                isGroup.append(false)
                try direct.run([.integer(id), .integer(pair.0), .integer(pair.0), .integer(pair.1), .text(startTime)])
            }
        }

        progress("messages: \(plan.messages) (\(plan.bigGroupMessages) in the big group), events for the newest \(plan.events)")
        var lastRead = [Int64](repeating: 0, count: plan.chats + 1)
        var lastID = [Int64](repeating: 0, count: plan.chats + 1)
        let rareRate = max(1, min(100_000, plan.messages / 20))
        let insert = try connection.statement("""
            INSERT INTO messages (id, chat_id, sender_id, content, created_at) VALUES (?, ?, ?, ?, ?)
            """)
        let event = try connection.statement("""
            INSERT INTO events (op, audience, chat_id, message_id, created_at) VALUES ('MESSAGE', 'chat', ?, ?, ?)
            """)
        // What `Store.indexForSearch` does for a send: the transaction's messages indexed in
        // one statement at its end (migration 007). Before 007 a trigger indexes each row, and
        // before 004 there is no index.
        let indexedByTrigger = try connection.statement("""
            SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'messages_fts_insert'
            """).first { _ in true } ?? false
        let hasIndex = try connection.statement("SELECT 1 FROM sqlite_master WHERE name = 'messages_fts'")
            .first { _ in true } ?? false
        let indexForSearch = hasIndex && !indexedByTrigger ? try connection.statement("""
            INSERT INTO messages_fts (rowid, body, chat)
            SELECT id, content, 'c' || chat_id FROM messages WHERE id BETWEEN ? AND ?
            """) : nil
        let eventTime = SeedTime.rfc3339(now)
        let total = plan.messages, big = plan.bigGroupMessages
        var index = 0
        let clock = Date()
        while index < total {
            let end = min(total, index + Self.rowsPerTransaction)
            try connection.write {
                let first = Int64(index + 1)
                while index < end {
                    // Exactly `big` of the messages are the big group's, spread evenly.
                    let inBig = (index + 1) * big / total > index * big / total
                    let chat = inBig ? Int(SeedPlan.bigGroupID) : 2 + random.below(plan.chats - 1)
                    let chatMembers = members[chat]
                    let sender = chatMembers[random.below(chatMembers.count)]
                    let id = Int64(index + 1)
                    let seconds = start + Int64(index) * (now - start) / Int64(total)
                    try insert.run([.integer(id), .integer(Int64(chat)), .integer(sender),
                                    .text(vocabulary.message(&random, rareRate: rareRate)),
                                    .text(SeedTime.rfc3339(seconds))])
                    if index >= total - plan.events {
                        try event.run([.integer(Int64(chat)), .integer(id), .text(eventTime)])
                    }
                    if index == total - plan.unread { lastRead = lastID }
                    lastID[chat] = id
                    index += 1
                }
                try indexForSearch?.run([.integer(first), .integer(Int64(end))])
            }
            let rate = Double(index) / max(Date().timeIntervalSince(clock), 0.001)
            progress("  \(index) messages, \(Int(rate)) /s")
        }

        progress("members")
        try connection.write {
            let member = try connection.statement("""
                INSERT INTO chat_members (chat_id, user_id, joined_at, role, last_read_id) VALUES (?, ?, ?, ?, ?)
                """)
            for chat in 1..<members.count {
                for (position, user) in members[chat].enumerated() {
                    let role = isGroup[chat] && position == 0 ? "owner" : "member"
                    try member.run([.integer(Int64(chat)), .integer(user), .text(startTime), .text(role),
                                    .integer(lastRead[chat])])
                }
            }
        }
        progress("analyze, WAL")
        try connection.execute("ANALYZE")
        try connection.execute("PRAGMA journal_mode = WAL")
        return [
            "database": connection.path, "schema": schemaVersion, "messages": total, "users": plan.users,
            "chats": plan.chats, "big_group_id": SeedPlan.bigGroupID, "big_group_messages": big,
            "big_group_members": plan.bigGroupMembers, "busy_user_id": SeedPlan.busyUserID,
            "busy_username": "u\(SeedPlan.busyUserID)", "busy_chats": plan.busyChats + 1, "events": plan.events,
            "common_word": vocabulary.commonWord, "rare_word": Vocabulary.rareWord, "unread": plan.unread,
        ]
    }

    private func progress(_ line: String) {
        FileHandle.standardError.write(Data("ScaleSeed: \(line)\n".utf8))
    }
}

struct SeedError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
