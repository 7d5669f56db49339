import NIOCore

/// ws-read: READ ops/s. R readers in one group with a writer who posted `messages` messages
/// (setup over REST); every reader, on a protocol-2 socket, moves its marker through them
/// in order (`ReadSender`), `window` READs unanswered, flat out. One group lets R readers
/// share the setup's messages; each READ's event then goes to all R readers' sockets.
enum ReadScenario {
    static func run(_ load: LoadContext) throws -> Report {
        let options = load.options
        let fixtures = load.fixtures()
        say("ws-read: logging in \(options.readers) readers and a writer")
        let users = try fixtures.login(prefix: options.prefix, count: options.readers + 1)
        let (writer, readers) = (users[0], Array(users.dropFirst()))
        let readerIDs = try fixtures.userIDs(readers)
        let chatID = try fixtures.groupChat(name: "\(options.prefix) reads", creator: writer, participants: readerIDs)
        say("ws-read: posting \(options.messages) messages into group chat \(chatID)")
        let messageIDs = try fixtures.postMessages(into: Array(repeating: chatID, count: options.messages), from: writer,
                                                   content: "read me").map(UInt64.init).sorted()
        fixtures.close()
        let readIndex = Dictionary(uniqueKeysWithValues: messageIDs.enumerated().map { ($0.element, UInt64($0.offset)) })

        let stats = try load.makeLoopStats()
        let window = options.window
        let opened = SocketFleet.open(
            count: readers.count, endpoint: load.endpoint, loops: load.loops, concurrency: options.connectConcurrency,
            token: { readers[$0].token },
            makeBehavior: { index, _ in
                ReadSender(chatID: chatID, userID: readerIDs[index], window: window, messageIDs: messageIDs,
                           readIndex: readIndex, stats: stats[index % stats.count].value)
            })
        let sockets = opened.open
        guard !sockets.isEmpty else { throw Fixtures.Failure(description: "no socket could be opened") }
        let byLoop = load.loops.map { loop in sockets.filter { $0.eventLoop === loop } }
        sleepSeconds(0.5)

        let measure = MeasureWindow(warmup: options.warmup, duration: options.duration)
        try load.onEachLoop { index in
            stats[index].value.window = measure
            for socket in byLoop[index] { (socket.value.behavior as! ReadSender).start(on: socket.value) }
        }
        say("ws-read: \(sockets.count) readers flat out, window \(window); warm-up \(options.warmup) s, "
            + "measuring \(options.duration) s")
        let cpu = try load.measure(measure, watch: options.watch, unit: "READs") {
            try load.sumOverLoops { stats[$0].value.tally.answered }
        }
        func readersSum(_ read: @escaping @Sendable (ReadSender) -> Int) throws -> Int {
            try load.sumOverLoops { index in byLoop[index].reduce(0) { $0 + read($1.value.behavior as! ReadSender) } }
        }
        // Exhausted before the window ended: the rate then understates what the relay does.
        let exhausted = try readersSum { $0.exhausted ? 1 : 0 }
        try load.onEachLoop { index in
            for socket in byLoop[index] { (socket.value.behavior as! ReadSender).stop() }
        }
        try load.drain { try readersSum { $0.outstanding } }
        try load.onEachLoop { index in
            for socket in byLoop[index] { (socket.value.behavior as! ReadSender).finish() }
        }
        let tally = try load.merged(stats)
        let ending = SocketFleet.end(sockets)

        let seconds = measure.seconds
        var report = Report(scenario: options.scenario.rawValue)
        report.add("readers", sockets.count)
        report.add("messages", messageIDs.count)
        report.add("window", window)
        report.add("duration_s", seconds, digits: 2)
        report.add("sent", tally.sent)
        report.add("reads", tally.answered)
        report.add("reads_per_s", Double(tally.answered) / seconds, digits: 0)
        report.add("deliveries_per_s", Double(tally.delivered) / seconds, digits: 0)
        report.addLatency(tally.latency)
        report.add("exhausted", exhausted)
        report.addIntegrity(tally)
        report.add("protocol_errors", ending.protocolErrors)
        report.add("errors", tally.errors + opened.failures + (sockets.count - ending.stillOpen))
        report.add("connect_failures", opened.failures)
        report.add("loadgen_cpu", cpu.generator, digits: 2)
        report.append(cpu.processes)
        say(String(format: "ws-read: %.0f READs/s answered, p50 %.2f ms, p99 %.2f ms, %d readers ran out, lost %d, errors %d",
                   Double(tally.answered) / seconds, Report.millis(tally.latency, 50), Report.millis(tally.latency, 99),
                   exhausted, tally.lost, tally.errors + opened.failures))
        return report
    }
}
