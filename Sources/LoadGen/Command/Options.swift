/// What one LoadGen run does: the scenario and every setting it reads, filled in by the
/// scenario's command (`LoadGenCommand`), which holds the defaults, the help texts and the
/// range checks. A plain value, so the scenarios do not depend on how it was parsed.
struct Options: Sendable {
    enum Scenario: String, Sendable, CaseIterable {
        case wsIngest = "ws-ingest"
        case wsFanout = "ws-fanout"
        case wsIdle = "ws-idle"
        case restWrite = "rest-write"
        case wsFloor = "ws-floor"
        case wsResume = "ws-resume"
        case wsReactions = "ws-reactions"
        case restChatList = "rest-chat-list"
        case wsPresence = "ws-presence"
        case wsRead = "ws-read"
    }

    enum FloorCopies: String, Sendable, CaseIterable {
        /// Every other socket that has sent to the same chat (ws-ingest's direct chats).
        case senders
        /// Every other open socket: all of them one group (ws-fanout's group).
        case all
    }

    var scenario: Scenario
    /// nginx's address; only 127.0.0.0/8 is accepted.
    var host = "127.0.0.1"
    var port = 3000
    /// ws-ingest: users (two per direct chat); ws-idle: sockets (one user each);
    /// rest-write: keep-alive connections (one user each, two per direct chat).
    var users = 200
    /// ws-fanout: members of the group chat, the sender included.
    var members = 1000
    /// Seconds of measurement after the warm-up.
    var duration = 5.0
    /// Seconds of load before measuring starts.
    var warmup = 1.0
    /// Target send rate in messages (or requests) per second for the whole run; 0 = flat out.
    var rate = 0.0
    /// Messages one connection (ws-ingest) or the sender (ws-fanout) may have unanswered.
    var window = 1
    /// ws-idle: seconds to hold the sockets open after printing "ready".
    var hold = 10.0
    /// Event loop threads.
    var threads = 2
    /// Source addresses 127.0.0.1 … 127.0.0.N; 0 = as many as the connection count needs.
    var sources = 0
    /// WebSocket handshakes (or setup requests) in flight at once.
    var connectConcurrency = 256
    /// Username prefix; random by default so runs against one database never collide.
    var prefix = Options.randomPrefix()
    /// Seconds a message may go undelivered (ws-fanout) before it counts as lost.
    var lossTimeout = 5.0
    /// Processes whose CPU use is reported over the measured window.
    var watch = WatchedProcesses.none
    /// ws-floor: the Unix socket to listen on.
    var socket: String?
    /// ws-floor: who gets a copy of a message besides its sender.
    var copiesTo = FloorCopies.senders
    /// The WebSocket protocol the sockets speak: 1 (`/ws`) or 2 (`/ws?v=2`, the event stream).
    var protocolVersion = 1
    /// ws-resume: events missed per round, and rounds.
    var events = 10_000
    var rounds = 5
    /// ws-reactions: members reacting over REST, one keep-alive connection and one emoji each.
    var reactors = 16
    /// rest-chat-list: chats of the user whose list is measured, and of the user beside it.
    var chats = 2000
    var fewChats = 10
    var page = 50
    /// ws-presence: sockets that stay connected and count PRESENCE frames.
    var observers = 10
    /// ws-read: readers in the group, and the messages they read through.
    var readers = 20
    var messages = 5000

    /// WebSocket or HTTP connections the scenario opens at most.
    var connectionCount: Int {
        switch scenario {
        case .wsFanout: members
        case .wsReactions: members + reactors
        case .wsPresence: members + observers
        case .wsRead: readers
        case .wsIngest, .wsIdle, .restWrite: users
        case .wsResume: 3
        case .restChatList: 1
        case .wsFloor: 0
        }
    }

    /// Source addresses to spread connections over: ~20,000 per address leaves room in the
    /// ephemeral port range for TIME_WAIT leftovers of earlier runs. A presence storm opens
    /// a new connection every cycle, each leaving a TIME_WAIT behind: 8 addresses give it
    /// about 220,000 ports, more than a 10 s storm on this machine gets through.
    var effectiveSources: Int {
        if sources > 0 { return sources }
        let needed = max(1, (connectionCount + 19_999) / 20_000)
        return scenario == .wsPresence ? max(8, needed) : needed
    }

    static func isLoopback(_ host: String) -> Bool {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        let octets = parts.compactMap { UInt8($0) }
        return octets.count == 4 && octets[0] == 127
    }

    static func randomPrefix() -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        return "lg" + String((0..<6).map { _ in letters.randomElement()! })
    }
}
