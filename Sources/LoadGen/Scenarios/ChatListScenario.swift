import NIOCore

/// rest-chat-list: `GET /chats?v=2` for a user in `chats` group chats, each with a message
/// from another member the user has not read — the whole list, and its first `page` chats
/// (`&limit=`) — in turn on one keep-alive connection with the same request for a user in
/// `fewChats`, one request at a time: the latencies are taken in the same state of the
/// machine and none waits for another, so their ratios are what the longer list costs. An
/// answer counts only if it lists every chat it should, each with unread messages
/// (`ChatListAnswer`).
enum ChatListScenario {
    static func run(_ load: LoadContext) throws -> Report {
        let options = load.options
        let fixtures = load.fixtures()
        let users = try fixtures.login(prefix: options.prefix, count: 3)
        let (many, few, writer) = (users[0], users[1], users[2])
        let ids = try fixtures.userIDs([many, few])
        say("rest-chat-list: \(options.chats) + \(options.fewChats) group chats, one unread message each")
        let prefix = options.prefix
        let manyChats = try fixtures.groupChats(count: options.chats, name: { "\(prefix) list \($0)" },
                                                creator: { _ in writer }, participants: [ids[0]])
        let fewChats = try fixtures.groupChats(count: options.fewChats, name: { "\(prefix) few \($0)" },
                                               creator: { _ in writer }, participants: [ids[1]])
        _ = try fixtures.postMessages(into: manyChats + fewChats, from: writer, content: "unread")
        fixtures.close()

        let loop = load.loops[0]
        let session = HTTPSession(endpoint: load.endpoint, loop: loop, index: 0)
        let readers = [(path: "/chats?v=2", token: many.token, chats: options.chats),
                       (path: "/chats?v=2&limit=\(options.page)", token: many.token, chats: min(options.page, options.chats)),
                       (path: "/chats?v=2", token: few.token, chats: options.fewChats)]
        let stats = try loop.submit { NIOLoopBound(readers.map { _ in LoopStats() }, eventLoop: loop) }.wait()
        let measure = MeasureWindow(warmup: options.warmup, duration: options.duration)
        try loop.submit { for tally in stats.value { tally.window = measure } }.wait()
        let bytes = try loop.submit { NIOLoopBoundBox(readers.map { _ in 0 }, eventLoop: loop) }.wait()
        let done = loop.makePromise(of: Void.self)
        @Sendable func step(_ index: Int) {
            let now = monotonicNanos()
            guard now < measure.end else { return done.succeed() }
            let which = index % readers.count
            let reader = readers[which]
            session.request(.get(reader.path, token: reader.token)).whenComplete { result in
                let tally = stats.value[which]
                tally.sent(at: now)
                if case .success(let answer) = result, answer.status == 200,
                   answer.body.withUnsafeReadableBytes({ ChatListAnswer.isComplete($0, expected: reader.chats) }) {
                    tally.answered(at: monotonicNanos(), after: answer.nanos)
                    bytes.value[which] = answer.body.readableBytes
                } else {
                    tally.error()
                }
                step(index + 1)
            }
        }
        loop.execute { step(0) }
        say("rest-chat-list: the three lists in turn on one connection; warm-up \(options.warmup) s, "
            + "measuring \(options.duration) s")
        let cpu = try load.measure(measure, watch: options.watch, unit: "lists") {
            try loop.submit { stats.value.reduce(0) { $0 + $1.tally.answered } }.wait()
        }
        try done.futureResult.wait()
        let tallies = try loop.submit { stats.value.map(\.tally) }.wait()
        let (manyTally, pageTally, fewTally) = (tallies[0], tallies[1], tallies[2])
        let sizes = try loop.submit { (many: bytes.value[0], page: bytes.value[1], few: bytes.value[2]) }.wait()
        _ = try? session.close().wait()

        let seconds = measure.seconds
        var report = Report(scenario: options.scenario.rawValue)
        report.add("chats", options.chats)
        report.add("few_chats", options.fewChats)
        report.add("duration_s", seconds, digits: 2)
        report.add("sent", manyTally.sent)
        report.add("lists_per_s", Double(manyTally.answered) / seconds, digits: 1)
        report.add("bytes", sizes.many)
        report.addLatency(manyTally.latency)
        report.add("page", options.page)
        report.add("page_bytes", sizes.page)
        report.addLatency(pageTally.latency, prefix: "page_")
        report.add("few_lists_per_s", Double(fewTally.answered) / seconds, digits: 1)
        report.add("few_bytes", sizes.few)
        report.addLatency(fewTally.latency, prefix: "few_")
        report.add("errors", manyTally.errors + pageTally.errors + fewTally.errors)
        report.add("loadgen_cpu", cpu.generator, digits: 2)
        report.append(cpu.processes)
        say(String(format: "rest-chat-list: %d chats p50 %.2f ms, p99 %.2f ms (%d bytes); first %d: p50 %.2f ms, p99 %.2f ms; "
                   + "%d chats p50 %.2f ms, p99 %.2f ms; errors %d",
                   options.chats, Report.millis(manyTally.latency, 50), Report.millis(manyTally.latency, 99), sizes.many,
                   options.page, Report.millis(pageTally.latency, 50), Report.millis(pageTally.latency, 99),
                   options.fewChats, Report.millis(fewTally.latency, 50), Report.millis(fewTally.latency, 99),
                   manyTally.errors + pageTally.errors + fewTally.errors))
        return report
    }
}
