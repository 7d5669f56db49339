import NIOCore

/// ws-fanout: one group chat of M members, all connected; the first member sends flat out
/// (or at --rate); deliveries/s and send → last member's delivery.
enum FanoutScenario {
    static func run(_ load: LoadContext) throws -> Report {
        let options = load.options
        let fixtures = load.fixtures()
        say("ws-fanout: logging in \(options.members) users")
        let users = try fixtures.login(prefix: options.prefix, count: options.members)
        let ids = try fixtures.userIDs(Array(users.dropFirst()))
        let chatID = try fixtures.groupChat(name: "\(options.prefix) fan-out", creator: users[0], participants: ids)
        fixtures.close()
        say("ws-fanout: group chat \(chatID) with \(users.count) members")

        let window = options.window
        let flatOut = options.rate == 0
        let tracker = FanoutTracker(window: window)
        say("ws-fanout: opening \(users.count) sockets")
        let opened = SocketFleet.open(
            count: users.count, endpoint: load.endpoint, loops: load.loops, concurrency: options.connectConcurrency,
            token: { users[$0].token },
            makeBehavior: { index, _ in
                FanoutMember(chatID: chatID, isSender: index == 0, window: window, flatOut: flatOut, tracker: tracker)
            })
        say("ws-fanout: \(opened.open.count) sockets open in \(String(format: "%.1f", opened.seconds)) s"
            + (opened.failures > 0 ? ", \(opened.failures) failed (\(opened.firstError ?? ""))" : ""))
        guard let senderSocket = opened.sockets[0] else {
            throw Fixtures.Failure(description: "the sender's socket could not be opened: \(opened.firstError ?? "")")
        }
        let sockets = opened.open
        let byLoop = load.loops.map { loop in sockets.filter { $0.eventLoop === loop } }
        // Let the relay settle (CHAT announcements) before the clock starts.
        sleepSeconds(0.5)

        let measure = MeasureWindow(warmup: options.warmup, duration: options.duration)
        tracker.start(window: measure, expected: sockets.count)
        let wake: @Sendable () -> Void = {
            senderSocket.eventLoop.execute {
                (senderSocket.value.behavior as! FanoutMember).fill(senderSocket.value)
            }
        }
        try load.onEachLoop { index in
            for socket in byLoop[index] { (socket.value.behavior as! FanoutMember).wakeSender = wake }
        }
        let lossTimeout = options.lossTimeout.nanoseconds
        let timers = try senderSocket.eventLoop.submit { () -> NIOLoopBound<(RateTicker?, RepeatedTask)> in
            let socket = senderSocket.value
            let sender = socket.behavior as! FanoutMember
            var ticker: RateTicker?
            if !flatOut {
                ticker = RateTicker(senders: [(socket, sender)], rate: options.rate) { tracker.skipped($0, at: $1) }
            }
            let expiry = senderSocket.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(250),
                                                                    delay: .milliseconds(250)) { _ in
                if tracker.expire(olderThan: lossTimeout, now: monotonicNanos()) > 0 {
                    (senderSocket.value.behavior as! FanoutMember).fill(senderSocket.value)
                }
            }
            return NIOLoopBound((ticker, expiry), eventLoop: senderSocket.eventLoop)
        }.wait()
        try load.onEachLoop { index in
            for socket in byLoop[index] { (socket.value.behavior as! FanoutMember).start(on: socket.value) }
        }
        try senderSocket.eventLoop.submit { timers.value.0?.start(on: senderSocket.eventLoop) }.wait()
        say("ws-fanout: sending " + (flatOut ? "flat out, window \(window) messages" : "at \(options.rate) msgs/s")
            + "; warm-up \(options.warmup) s, measuring \(options.duration) s")

        let cpu = load.measure(measure, watch: options.watch, unit: "deliveries") { tracker.tally.delivered }

        try senderSocket.eventLoop.submit {
            timers.value.0?.stop()
            timers.value.1.cancel()
        }.wait()
        try load.onEachLoop { index in
            for socket in byLoop[index] { (socket.value.behavior as! FanoutMember).stop() }
        }
        load.drain { tracker.outstanding }
        tracker.finish()
        let tally = tracker.tally
        let ending = SocketFleet.end(sockets)

        let seconds = measure.seconds
        var report = Report(scenario: options.scenario.rawValue)
        report.add("members", users.count)
        report.add("sockets", sockets.count)
        report.add("window", window)
        report.add("target_rate", options.rate, digits: 0)
        report.add("duration_s", seconds, digits: 2)
        report.addDeliveries(tally, seconds: seconds, protocolErrors: ending.protocolErrors,
                             errors: opened.failures + (sockets.count - ending.stillOpen), connectFailures: opened.failures,
                             cpu: cpu)
        say(Report.deliveriesSummary("ws-fanout", copies: "deliveries", sends: "msgs", tally: tally, seconds: seconds,
                                     members: sockets.count, errors: opened.failures, generator: cpu.generator))
        return report
    }
}
