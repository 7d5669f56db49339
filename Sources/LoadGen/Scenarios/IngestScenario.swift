import NIOCore

/// ws-ingest: N users in N/2 direct chats, every user sending over its own socket with
/// nonces; committed + acknowledged messages/s and send → ACK latency.
enum IngestScenario {
    static func run(_ load: LoadContext) throws -> Report {
        let options = load.options
        let fixtures = load.fixtures()
        say("ws-ingest: logging in \(options.users) users")
        let users = try fixtures.login(prefix: options.prefix, count: options.users)
        say("ws-ingest: creating \(options.users / 2) direct chats")
        let chats = try fixtures.directChats(pairing: users)
        fixtures.close()

        let stats = try load.makeLoopStats()
        let window = options.window
        let flatOut = options.rate == 0
        say("ws-ingest: opening \(options.users) sockets")
        let opened = SocketFleet.open(
            count: users.count, endpoint: load.endpoint, loops: load.loops, concurrency: options.connectConcurrency,
            token: { users[$0].token },
            makeBehavior: { index, _ in
                IngestSender(chatID: chats[index / 2], window: window, flatOut: flatOut,
                             stats: stats[index % stats.count].value)
            })
        say("ws-ingest: \(opened.open.count) sockets open in \(String(format: "%.1f", opened.seconds)) s"
            + (opened.failures > 0 ? ", \(opened.failures) failed (\(opened.firstError ?? ""))" : ""))
        let sockets = opened.open
        guard !sockets.isEmpty else { throw Fixtures.Failure(description: "no socket could be opened") }
        let byLoop = load.loops.map { loop in sockets.filter { $0.eventLoop === loop } }

        let measure = MeasureWindow(warmup: options.warmup, duration: options.duration)
        let tickers = try load.loops.indices.map { index in
            try load.loops[index].submit { () -> NIOLoopBound<RateTicker?> in
                stats[index].value.window = measure
                let mine = byLoop[index].map { ($0.value, $0.value.behavior as! IngestSender) }
                for (socket, sender) in mine { sender.start(on: socket) }
                var ticker: RateTicker?
                if !flatOut {
                    let share = options.rate * Double(mine.count) / Double(sockets.count)
                    let loopStats = stats[index].value
                    ticker = RateTicker(senders: mine.map { ($0.0, $0.1 as any PacedSender) }, rate: share) {
                        loopStats.skipped($0, at: $1)
                    }
                    ticker!.start(on: load.loops[index])
                }
                return NIOLoopBound(ticker, eventLoop: load.loops[index])
            }.wait()
        }
        say("ws-ingest: sending " + (flatOut ? "flat out, window \(window) per socket" : "at \(options.rate) msgs/s")
            + "; warm-up \(options.warmup) s, measuring \(options.duration) s")

        let cpu = try load.measure(measure, watch: options.watch, unit: "ACKs") {
            try load.sumOverLoops { stats[$0].value.tally.answered }
        }

        try load.onEachLoop { index in
            tickers[index].value?.stop()
            for socket in byLoop[index] { (socket.value.behavior as! IngestSender).stop() }
        }
        // Let the answers to the last sends arrive, so their sockets close cleanly.
        try load.drain {
            try load.sumOverLoops { index in
                byLoop[index].reduce(0) { $0 + ($1.value.behavior as! IngestSender).outstanding }
            }
        }
        try load.onEachLoop { index in
            for socket in byLoop[index] { (socket.value.behavior as! IngestSender).finish() }
        }
        let tally = try load.merged(stats)
        let ending = SocketFleet.end(sockets)

        let seconds = measure.seconds
        var report = Report(scenario: options.scenario.rawValue)
        report.add("users", options.users)
        report.add("chats", chats.count)
        report.add("sockets", sockets.count)
        report.add("window", window)
        report.add("target_rate", options.rate, digits: 0)
        report.add("duration_s", seconds, digits: 2)
        report.add("sent", tally.sent)
        report.add("acked", tally.answered)
        report.add("msgs_per_s", Double(tally.answered) / seconds, digits: 0)
        report.add("deliveries_per_s", Double(tally.delivered) / seconds, digits: 0)
        report.addLatency(tally.latency)
        if !flatOut { report.addLatency(tally.writtenLatency, prefix: "written_") }
        report.add("skipped", tally.skipped)
        report.addIntegrity(tally)
        report.add("protocol_errors", ending.protocolErrors)
        report.add("errors", tally.errors + opened.failures + (sockets.count - ending.stillOpen))
        report.add("connect_failures", opened.failures)
        report.add("loadgen_cpu", cpu.generator, digits: 2)
        report.append(cpu.processes)
        say(String(format: "ws-ingest: %.0f msgs/s acknowledged, ack p50 %.2f ms, p99 %.2f ms, lost %d, duplicate %d, unknown %d, errors %d, loadgen CPU %.2f cores",
                   Double(tally.answered) / seconds, Report.millis(tally.latency, 50), Report.millis(tally.latency, 99),
                   tally.lost, tally.duplicates, tally.unknown, tally.errors + opened.failures, cpu.generator))
        return report
    }
}
