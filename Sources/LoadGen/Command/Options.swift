/// LoadGen's command line: `LoadGen <scenario> [--flag value | --flag=value]...`, parsed by
/// hand (swift-argument-parser is not a dependency). Every field has a default, and every
/// numeric flag is range-checked, so a typo cannot start an unbounded run.
struct Options: Sendable {
    enum Scenario: String, Sendable, CaseIterable {
        case wsIngest = "ws-ingest"
        case wsFanout = "ws-fanout"
        case wsIdle = "ws-idle"
        case restWrite = "rest-write"
        case wsFloor = "ws-floor"
        case wsResume = "ws-resume"
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
    var window: Int?
    /// ws-idle: seconds to hold the sockets open after printing "ready".
    var hold = 10.0
    /// The WebSocket protocol the sockets speak: 1 (`/ws`) or 2 (`/ws?v=2`).
    var protocolVersion = 1
    /// ws-resume: events missed per round, and rounds.
    var events = 10_000
    var rounds = 5
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

    enum FloorCopies: String, Sendable {
        /// Every other socket that has sent to the same chat (ws-ingest's direct chats).
        case senders
        /// Every other open socket: all of them one group (ws-fanout's group).
        case all
    }

    static let usage = """
        usage: LoadGen <scenario> [options]

        scenarios:
          ws-ingest    N users in N/2 direct chats, each sending {chat_id, content, nonce} flat out
                       (or at --rate in total); measures ACKed messages/s and send -> ACK latency
          ws-fanout    one group chat of M members, all connected; the first member sends flat out
                       (or at --rate); measures deliveries/s and send -> last member's delivery
          ws-idle      opens N authenticated sockets, prints "ready" on stdout, holds them --hold s
          ws-resume    a protocol-2 client away while --events messages are sent, then back with
                       ?since=: the time until the last missed event arrives, --rounds times
          rest-write   POST /chats/:id/messages over N keep-alive connections; committed msgs/s
          ws-floor     not a load: a stand-in relay on --socket that answers sends like WSRelay
                       (echo, ACK, a copy to each of --copies-to) but stores nothing; nginx's /ws
                       pointed at it gives the floor baselines for ws-ingest and ws-fanout. Runs
                       until SIGTERM

        options:
          --host ADDR              nginx address in 127.0.0.0/8 (127.0.0.1)
          --port N                 nginx port (3000)
          --users N                users / sockets / connections (200)
          --members N              ws-fanout group size, sender included (1000)
          --duration S             measured seconds (5)
          --warmup S               seconds of load before measuring (1)
          --rate R                 target messages (requests) per second in total; 0 = flat out (0)
          --window N               unanswered messages per connection (ws-ingest 1, ws-fanout 16)
          --hold S                 ws-idle: seconds to hold the sockets after "ready" (10)
          --protocol 1|2           WebSocket protocol of the sockets: /ws or /ws?v=2 (1)
          --events N               ws-resume: events missed per round (10000)
          --rounds N               ws-resume: rounds (5)
          --threads N              event loop threads (2)
          --sources N              source addresses 127.0.0.1..N; 0 = automatic (0)
          --connect-concurrency N  handshakes or setup requests in flight (256)
          --prefix P               username prefix (random)
          --loss-timeout S         ws-fanout: seconds before an undelivered message counts as lost (5)
          --watch NAME:PID,...     report these processes' CPU (cores) over the measured window as
                                   cpu_NAME; pids sharing a name are summed (e.g. nginx workers)
          --socket PATH            ws-floor: the Unix socket to listen on
          --copies-to WHO          ws-floor: 'senders' (the chat's other senders; for ws-ingest) or
                                   'all' (every other open socket; for ws-fanout) (senders)

        Prints human-readable progress on stderr and one JSON line on stdout at the end.
        """

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func parse(_ arguments: [String]) throws(Failure) -> Options {
        guard let first = arguments.first else { throw Failure(description: "no scenario given") }
        guard let scenario = Scenario(rawValue: first) else {
            throw Failure(description: "unknown scenario '\(first)' (one of: \(Scenario.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        var options = Options(scenario: scenario)
        var rest = arguments.dropFirst()
        while let argument = rest.popFirst() {
            guard argument.hasPrefix("--") else { throw Failure(description: "unexpected argument '\(argument)'") }
            var name = String(argument.dropFirst(2))
            let value: String
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            } else {
                guard let next = rest.popFirst() else { throw Failure(description: "--\(name) needs a value") }
                value = next
            }
            try options.set(name, value)
        }
        try options.validate()
        return options
    }

    private mutating func set(_ name: String, _ value: String) throws(Failure) {
        switch name {
        case "host": host = value
        case "port": port = try Self.integer(name, value, 1...65535)
        case "users": users = try Self.integer(name, value, 1...60_000)
        case "members": members = try Self.integer(name, value, 2...1001)
        case "duration": duration = try Self.seconds(name, value, 0.1...3600)
        case "warmup": warmup = try Self.seconds(name, value, 0...600)
        case "rate": rate = try Self.seconds(name, value, 0...10_000_000)
        case "window": window = try Self.integer(name, value, 1...4096)
        case "hold": hold = try Self.seconds(name, value, 0...3600)
        case "protocol": protocolVersion = try Self.integer(name, value, 1...2)
        case "events": events = try Self.integer(name, value, 1...100_000)
        case "rounds": rounds = try Self.integer(name, value, 1...100)
        case "threads": threads = try Self.integer(name, value, 1...64)
        case "sources": sources = try Self.integer(name, value, 0...250)
        case "connect-concurrency": connectConcurrency = try Self.integer(name, value, 1...10_000)
        case "prefix":
            guard (1...12).contains(value.count), value.first!.isASCII, value.first!.isLetter,
                  value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
            else { throw Failure(description: "--prefix must be 1-12 ASCII letters, digits or _, starting with a letter") }
            prefix = value
        case "socket":
            guard value.hasPrefix("/"), value.utf8.count < 100 else {
                throw Failure(description: "--socket takes an absolute path shorter than 100 bytes")
            }
            socket = value
        case "copies-to":
            guard let parsed = FloorCopies(rawValue: value) else {
                throw Failure(description: "--copies-to takes 'senders' or 'all', got '\(value)'")
            }
            copiesTo = parsed
        case "loss-timeout": lossTimeout = try Self.seconds(name, value, 0.1...600)
        case "watch":
            guard let parsed = WatchedProcesses.parse(value) else {
                throw Failure(description: "--watch takes name:pid[,name:pid...], got '\(value)'")
            }
            watch = parsed
        default: throw Failure(description: "unknown option --\(name)")
        }
    }

    private func validate() throws(Failure) {
        guard Self.isLoopback(host) else {
            throw Failure(description: "--host must be an IPv4 address in 127.0.0.0/8 (LoadGen only loads this machine)")
        }
        if scenario == .wsFloor, socket == nil {
            throw Failure(description: "ws-floor needs --socket PATH")
        }
        if scenario == .wsIngest || scenario == .restWrite, users < 2 || users % 2 != 0 {
            throw Failure(description: "--users must be even and at least 2 for \(scenario.rawValue) (two users per chat)")
        }
    }

    /// Unanswered messages allowed per connection (ws-ingest) or for the sender (ws-fanout).
    var effectiveWindow: Int { window ?? (scenario == .wsFanout ? 16 : 1) }

    /// WebSocket or HTTP connections the scenario opens at most.
    var connectionCount: Int {
        switch scenario {
        case .wsFanout: members
        case .wsIngest, .wsIdle, .restWrite: users
        case .wsResume: 3
        case .wsFloor: 0
        }
    }

    /// Source addresses to spread connections over: ~20,000 per address leaves room in the
    /// ephemeral port range for TIME_WAIT leftovers of earlier runs.
    var effectiveSources: Int { sources > 0 ? sources : max(1, (connectionCount + 19_999) / 20_000) }

    static func isLoopback(_ host: String) -> Bool {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        let octets = parts.compactMap { UInt8($0) }
        return octets.count == 4 && octets[0] == 127
    }

    private static func integer(_ name: String, _ value: String, _ range: ClosedRange<Int>) throws(Failure) -> Int {
        guard let number = Int(value), range.contains(number) else {
            throw Failure(description: "--\(name) must be an integer in \(range.lowerBound)...\(range.upperBound), got '\(value)'")
        }
        return number
    }

    private static func seconds(_ name: String, _ value: String, _ range: ClosedRange<Double>) throws(Failure) -> Double {
        guard let number = Double(value), number.isFinite, range.contains(number) else {
            throw Failure(description: "--\(name) must be a number in \(range.lowerBound)...\(range.upperBound), got '\(value)'")
        }
        return number
    }

    private static func randomPrefix() -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        return "lg" + String((0..<6).map { _ in letters.randomElement()! })
    }
}
