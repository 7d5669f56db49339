import NIOCore

/// ws-reactions: one hot message in a group of M members, all on protocol-2 sockets; R of
/// them react to it over REST flat out (`ReactionSender`), every change a REACTION event to
/// every member. REACTION deliveries/s and request → the last member's REACTION frame.
enum ReactionScenario {
    static func run(_ load: LoadContext) throws -> Report {
        let options = load.options
        let fixtures = load.fixtures()
        say("ws-reactions: logging in \(options.members) users")
        let users = try fixtures.login(prefix: options.prefix, count: options.members)
        let ids = try fixtures.userIDs(users)
        let chatID = try fixtures.groupChat(name: "\(options.prefix) reactions", creator: users[0],
                                            participants: Array(ids.dropFirst()))
        let messageID = try fixtures.postMessages(into: [chatID], from: users[0], content: "hot")[0]
        fixtures.close()
        say("ws-reactions: message \(messageID) in group chat \(chatID) with \(users.count) members, "
            + "\(options.reactors) reactors")

        let lanes = options.reactors
        let laneOf = Dictionary(uniqueKeysWithValues: ids.prefix(lanes).enumerated().map { (UInt64($0.element), $0.offset) })
        let tracker = FanoutTracker(window: lanes, lanes: lanes)
        let measure = MeasureWindow(warmup: options.warmup, duration: options.duration)
        let senders = try (0..<lanes).map { lane -> NIOLoopBound<ReactionSender> in
            let loop = load.loops[lane % load.loops.count]
            let session = HTTPSession(endpoint: load.endpoint, loop: loop, index: options.members + lane)
            return try loop.submit {
                NIOLoopBound(ReactionSender(session: session, lane: lane, lanes: lanes, chatID: chatID,
                                            messageID: messageID, token: users[lane].token, tracker: tracker,
                                            window: measure), eventLoop: loop)
            }.wait()
        }
        let completed: @Sendable (Int) -> Void = { lane in
            senders[lane].eventLoop.execute { senders[lane].value.changeDelivered() }
        }

        say("ws-reactions: opening \(users.count) sockets")
        let opened = SocketFleet.open(
            count: users.count, endpoint: load.endpoint, loops: load.loops, concurrency: options.connectConcurrency,
            token: { users[$0].token },
            makeBehavior: { _, _ in ReactionMember(tracker: tracker, lanes: laneOf, completed: completed) })
        say("ws-reactions: \(opened.open.count) sockets open in \(String(format: "%.1f", opened.seconds)) s"
            + (opened.failures > 0 ? ", \(opened.failures) failed (\(opened.firstError ?? ""))" : ""))
        let sockets = opened.open
        let byLoop = load.loops.map { loop in sockets.filter { $0.eventLoop === loop } }
        // Let the relay register every socket (READY) before the clock starts.
        sleepSeconds(0.5)

        tracker.start(window: measure, expected: sockets.count)
        try load.onEachLoop { index in
            for socket in byLoop[index] { (socket.value.behavior as! ReactionMember).start() }
        }
        for sender in senders { sender.eventLoop.execute { sender.value.start() } }
        say("ws-reactions: \(lanes) reactors flat out, one change in flight each; warm-up \(options.warmup) s, "
            + "measuring \(options.duration) s")

        let cpu = load.measure(measure, watch: options.watch, unit: "REACTION deliveries") { tracker.tally.delivered }

        for sender in senders { try sender.eventLoop.flatSubmit { sender.value.finished }.wait() }
        load.drain { tracker.outstanding }
        tracker.finish()
        try load.onEachLoop { index in
            for socket in byLoop[index] { (socket.value.behavior as! ReactionMember).stop() }
        }
        let tally = tracker.tally
        let ending = SocketFleet.end(sockets)

        let seconds = measure.seconds
        var report = Report(scenario: options.scenario.rawValue)
        report.add("members", users.count)
        report.add("sockets", sockets.count)
        report.add("reactors", lanes)
        report.add("target_rate", 0.0, digits: 0)
        report.add("duration_s", seconds, digits: 2)
        report.addDeliveries(tally, seconds: seconds, protocolErrors: ending.protocolErrors,
                             errors: opened.failures + (sockets.count - ending.stillOpen), connectFailures: opened.failures,
                             cpu: cpu)
        say(Report.deliveriesSummary("ws-reactions", copies: "REACTION deliveries", sends: "reactions", tally: tally, seconds: seconds,
                                     members: sockets.count, errors: opened.failures, generator: cpu.generator))
        return report
    }
}
