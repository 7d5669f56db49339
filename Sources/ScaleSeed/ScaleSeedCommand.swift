import ArgumentParser
import Foundation

/// `ScaleSeed --database PATH --migrations DIR --messages N`: a database of N messages in the
/// shape of a big deployment, written with prepared statements in large transactions (never
/// through the API: at 10 million messages the API would take hours).
///
/// Only migrations up to `--schema` are applied (by default all but the newest), so that the
/// benchmark can time `FCGIApp migrate` on the big database. Prints one JSON line with what
/// it made (ids, words, counts) for the benchmark to query.
struct ScaleSeedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ScaleSeed",
        abstract: "Seeds a large messenger database directly in SQLite (scripts/bench --scale).")

    @Option(help: "The database file to create (must not exist)")
    var database: String

    @Option(help: "The repository's migrations/sqlite/ directory")
    var migrations: String

    @Option(help: "Apply migrations up to this version (default: all but the newest)")
    var schema: Int64?

    @Option(help: "Messages in total")
    var messages = 10_000_000

    @Option(help: "Users (default: messages / 100)")
    var users: Int?

    @Option(help: "Chats (default: messages / 50)")
    var chats: Int?

    @Option(help: "Members of the big group")
    var bigGroupMembers = 1_000

    @Option(help: "Messages in the big group (default: messages / 10)")
    var bigGroupMessages: Int?

    @Option(help: "Direct chats of the busy user, besides the big group")
    var busyChats = 500

    @Option(help: "MESSAGE events written for the newest messages (the retained stream)")
    var events = 200_000

    @Option(help: "Messages, newest last, that every member has not read yet")
    var unread = 1_000

    @Option(help: "Random seed")
    var seed: UInt64 = 17

    func validate() throws {
        guard messages >= 10_000 else { throw ValidationError("--messages must be at least 10,000") }
        let users = users ?? messages / 100
        guard users >= bigGroupMembers, users > busyChats + 1 else {
            throw ValidationError("--users must be at least --big-group-members and more than --busy-chats")
        }
        guard (chats ?? messages / 50) > busyChats + 10 else { throw ValidationError("--chats is too small") }
        guard !FileManager.default.fileExists(atPath: database) else {
            throw ValidationError("\(database) exists; ScaleSeed writes a new database")
        }
    }

    func run() throws {
        let plan = SeedPlan(messages: messages, users: users ?? messages / 100, chats: chats ?? messages / 50,
                            bigGroupMembers: bigGroupMembers, bigGroupMessages: bigGroupMessages ?? messages / 10,
                            busyChats: busyChats, events: min(events, messages), unread: unread, seed: seed)
        let writer = try SeedWriter(path: database, plan: plan)
        let started = Date()
        try writer.applyMigrations(directory: migrations, through: schema)
        let summary = try writer.write()
        let seconds = Date().timeIntervalSince(started)
        var line = summary
        line["seconds"] = (seconds * 100).rounded() / 100
        let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }
}
