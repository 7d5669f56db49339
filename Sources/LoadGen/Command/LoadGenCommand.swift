import ArgumentParser

/// `LoadGen <scenario> [options]`: one subcommand per scenario, each with its own `--help`.
struct LoadGenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "LoadGen",
        abstract: "The load generator behind scripts/bench.",
        discussion: "Prints human-readable progress on stderr and one JSON line on stdout at the end.",
        subcommands: [WSIngestCommand.self, WSFanoutCommand.self, WSIdleCommand.self, RestWriteCommand.self,
                      WSResumeCommand.self, WSReactionsCommand.self, RestChatListCommand.self,
                      WSPresenceCommand.self, WSReadCommand.self, WSFloorCommand.self])
}

/// A scenario's command: validated flags turned into `Options`, then the run. (The option
/// groups' own `validate()` is run by swift-argument-parser before the command's.)
protocol ScenarioCommand: ParsableCommand {
    var options: Options { get }
}

extension ScenarioCommand {
    func run() throws {
        LoadRun.run(options)
    }
}

struct WSIngestCommand: ScenarioCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws-ingest",
        abstract: "N users in N/2 direct chats, each sending {chat_id, content, nonce} flat out (or at --rate in total).",
        discussion: "Measures ACKed messages/s and send -> ACK latency; every ACK is matched to the nonce in flight, and ACKs missing after the drain are reported as lost.")

    @OptionGroup var target: TargetOptions
    @OptionGroup var window: WindowOptions

    @Option(help: "Users, one socket each, two per direct chat")
    var users = 200

    @Option(name: .customLong("window"), help: "Unacknowledged messages per socket")
    var inFlight = 1

    mutating func validate() throws {
        try Bounds.check(users, 1...60_000, "users")
        try Bounds.checkPairs(users)
        try Bounds.check(inFlight, 1...4096, "window")
    }

    var options: Options {
        var options = Options(.wsIngest, target: target, window: window)
        options.users = users
        options.window = inFlight
        return options
    }
}

struct WSFanoutCommand: ScenarioCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws-fanout",
        abstract: "One group chat of M members, all connected; the first member sends flat out (or at --rate).",
        discussion: "Measures deliveries/s and send -> last member's delivery; every member checks that it gets each message once and in order, and messages not delivered to every member after the drain are reported as lost.")

    @OptionGroup var target: TargetOptions
    @OptionGroup var window: WindowOptions

    @Option(help: "Members of the group, the sender included")
    var members = 1000

    @Option(name: .customLong("window"), help: "Messages the sender may have not yet delivered to every member")
    var inFlight = 16

    @Option(help: "Seconds before a message some member has not received counts as lost")
    var lossTimeout = 5.0

    mutating func validate() throws {
        try Bounds.check(members, 2...1001, "members")
        try Bounds.check(inFlight, 1...4096, "window")
        try Bounds.check(lossTimeout, 0.1...600, "loss-timeout")
    }

    var options: Options {
        var options = Options(.wsFanout, target: target, window: window)
        options.members = members
        options.window = inFlight
        options.lossTimeout = lossTimeout
        return options
    }
}

struct WSIdleCommand: ScenarioCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws-idle",
        abstract: "Opens N authenticated sockets, prints \"ready <open sockets>\" on stdout, holds them --hold seconds.")

    @OptionGroup var target: TargetOptions

    @Option(help: "Sockets, one user each")
    var users = 200

    @Option(help: "Seconds to hold the sockets after \"ready\"")
    var hold = 10.0

    mutating func validate() throws {
        try Bounds.check(users, 1...60_000, "users")
        try Bounds.check(hold, 0...3600, "hold")
    }

    var options: Options {
        var options = Options(.wsIdle, target: target)
        options.users = users
        options.hold = hold
        return options
    }
}

struct RestWriteCommand: ScenarioCommand {
    static let configuration = CommandConfiguration(
        commandName: "rest-write",
        abstract: "POST /chats/:id/messages over N keep-alive connections; committed msgs/s.",
        discussion: "Each 200 must be the stored message (its id, chat and content); committed_total counts every 200 of the run, warm-up and drain included, for a comparison with the database's rows.")

    @OptionGroup var target: TargetOptions
    @OptionGroup var window: WindowOptions

    @Option(help: "Keep-alive connections, one user each, two per direct chat")
    var users = 200

    mutating func validate() throws {
        try Bounds.check(users, 1...60_000, "users")
        try Bounds.checkPairs(users)
    }

    var options: Options {
        var options = Options(.restWrite, target: target, window: window)
        options.users = users
        return options
    }
}

struct WSResumeCommand: ScenarioCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws-resume",
        abstract: "A protocol-2 client away while --events messages are sent, then back with ?since=: the time to the last missed event.",
        discussion: "Each round: the receiver reads READY's seq and disconnects; the sender sends the events over its socket, every one ACKed; the receiver reconnects with since and the clock runs from the connect until the last missed event arrives. READY first, seqs increasing and none missing are checked; anything else is an error.")

    @OptionGroup var target: TargetOptions

    @Option(help: "Events missed per round")
    var events = 10_000

    @Option(help: "Rounds; the report gives the median and the maximum")
    var rounds = 5

    mutating func validate() throws {
        try Bounds.check(events, 1...100_000, "events")
        try Bounds.check(rounds, 1...100, "rounds")
    }

    var options: Options {
        var options = Options(.wsResume, target: target)
        options.events = events
        options.rounds = rounds
        return options
    }
}

struct WSReactionsCommand: ScenarioCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws-reactions",
        abstract: "One hot message in a group of M members on protocol 2; R members react to it over REST (PUT, then DELETE, of their own emoji) flat out.",
        discussion: "Measures REACTION deliveries/s and PUT/DELETE -> the last member's REACTION frame. Each reactor sends its next change when its last one was answered 204 and reached every member; each member checks that every reactor's changes come once and in order (added, removed, added, ...).")

    @OptionGroup var target: TargetOptions
    @OptionGroup var window: WindowOptions

    @Option(help: "Members of the group, on protocol-2 sockets")
    var members = 1000

    @Option(help: "Members reacting, each on its own keep-alive connection with its own emoji (a message takes at most 20)")
    var reactors = 16

    mutating func validate() throws {
        try Bounds.check(members, 2...1001, "members")
        try Bounds.check(reactors, 1...min(20, members), "reactors")
    }

    var options: Options {
        var options = Options(.wsReactions, target: target, window: window)
        options.members = members
        options.reactors = reactors
        options.protocolVersion = 2  // REACTION frames go to protocol-2 sockets only
        return options
    }
}

struct RestChatListCommand: ScenarioCommand {
    static let configuration = CommandConfiguration(
        commandName: "rest-chat-list",
        abstract: "GET /chats?v=2 for a user in --chats chats, each with an unread message (the whole list and its first --page chats), alternated with the same for a user in --few-chats.",
        discussion: "One keep-alive connection, one request at a time, so neither list waits for the other; every answer must list every chat of its user with an unread count above 0.")

    @OptionGroup var target: TargetOptions
    @OptionGroup var window: WindowOptions

    @Option(help: "Group chats of the user whose list is measured")
    var chats = 2000

    @Option(help: "Group chats of the user measured beside it")
    var fewChats = 10

    @Option(help: "Chats in the first page (`&limit=`) of the busy user's list")
    var page = 50

    mutating func validate() throws {
        try Bounds.check(chats, 1...20_000, "chats")
        try Bounds.check(fewChats, 1...20_000, "few-chats")
        try Bounds.check(page, 1...1000, "page")
    }

    var options: Options {
        var options = Options(.restChatList, target: target, window: window)
        options.chats = chats
        options.fewChats = fewChats
        options.page = page
        return options
    }
}

struct WSPresenceCommand: ScenarioCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws-presence",
        abstract: "A presence storm: M members of one group connect (protocol 2, until READY) and disconnect in a loop while O observers stay connected.",
        discussion: "Each observer creates a group with every member (a group holds at most 1,001), so all members share a chat with every observer. Counts the PRESENCE frames each observer gets from each member in the measured window; the relay sends at most one per user per 5 s.")

    @OptionGroup var target: TargetOptions
    @OptionGroup var window: WindowOptions

    @Option(help: "Members connecting and disconnecting")
    var members = 1000

    @Option(help: "Members that stay connected and count PRESENCE frames")
    var observers = 10

    mutating func validate() throws {
        try Bounds.check(members, 1...1000, "members")
        try Bounds.check(observers, 1...50, "observers")
    }

    var options: Options {
        var options = Options(.wsPresence, target: target, window: window)
        options.members = members
        options.observers = observers
        options.protocolVersion = 2  // PRESENCE frames go to protocol-2 sockets only
        return options
    }
}

struct WSReadCommand: ScenarioCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws-read",
        abstract: "READ ops/s: R readers of one group (protocol 2) move their read markers through --messages messages, flat out.",
        discussion: "Each READ names the reader's next message, so each moves the marker forward and is answered by the reader's own READ event (matched by last_read_id); the other readers' READ events are counted as deliveries. A reader that reaches the last message stops, and the report says how many did.")

    @OptionGroup var target: TargetOptions
    @OptionGroup var window: WindowOptions

    @Option(help: "Readers in the group, one protocol-2 socket each")
    var readers = 20

    @Option(help: "Messages the writer posts in setup; each reader can READ each once")
    var messages = 5000

    @Option(name: .customLong("window"), help: "Unanswered READs per reader")
    var inFlight = 4

    mutating func validate() throws {
        try Bounds.check(readers, 1...1000, "readers")
        try Bounds.check(messages, 1...200_000, "messages")
        try Bounds.check(inFlight, 1...4096, "window")
    }

    var options: Options {
        var options = Options(.wsRead, target: target, window: window)
        options.readers = readers
        options.messages = messages
        options.window = inFlight
        options.protocolVersion = 2  // READ events go to protocol-2 sockets only
        return options
    }
}

struct WSFloorCommand: ScenarioCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws-floor",
        abstract: "Not a load: a stand-in relay on --socket that answers sends like WSRelay but stores nothing.",
        discussion: "Echo, ACK and a copy to each of --copies-to; nginx's /ws pointed at it gives the floor baselines for ws-ingest and ws-fanout. Runs until SIGTERM.")

    @Option(help: "The Unix socket to listen on (an absolute path shorter than 100 bytes)")
    var socket: String

    @Option(help: "'senders': the chat's other senders (for ws-ingest); 'all': every other open socket (for ws-fanout)")
    var copiesTo = Options.FloorCopies.senders

    @Option(help: "Event loop threads")
    var threads = 2

    mutating func validate() throws {
        guard socket.hasPrefix("/"), socket.utf8.count < 100 else {
            throw ValidationError("--socket takes an absolute path shorter than 100 bytes")
        }
        try Bounds.check(threads, 1...64, "threads")
    }

    var options: Options {
        var options = Options(scenario: .wsFloor)
        options.socket = socket
        options.copiesTo = copiesTo
        options.threads = threads
        return options
    }
}
