import NIOCore

/// rest-chat-list: `GET /chats?v=2` for a user in `chats` group chats, each with a message
/// from another member the user has not read, alternated on one keep-alive connection with
/// the same request for a user in `fewChats`, one request at a time: the two latencies are
/// taken in the same state of the machine and neither waits for the other, so their ratio
/// is what the longer list costs. An answer counts only if it lists every chat of its user,
/// each with unread messages (`ChatListAnswer`).
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
        let stats = try loop.submit { NIOLoopBound((many: LoopStats(), few: LoopStats()), eventLoop: loop) }.wait()
        let measure = MeasureWindow(warmup: options.warmup, duration: options.duration)
        try loop.submit {
            stats.value.many.window = measure
            stats.value.few.window = measure
        }.wait()
        let bytes = try loop.submit { NIOLoopBoundBox((many: 0, few: 0), eventLoop: loop) }.wait()
        let done = loop.makePromise(of: Void.self)
        let readers = [(token: many.token, chats: options.chats), (token: few.token, chats: options.fewChats)]
        @Sendable func step(_ index: Int) {
            let now = monotonicNanos()
            guard now < measure.end else { return done.succeed() }
            let reader = readers[index % 2]
            session.request(.get("/chats?v=2", token: reader.token)).whenComplete { result in
                let tally = index.isMultiple(of: 2) ? stats.value.many : stats.value.few
                tally.sent(at: now)
                if case .success(let answer) = result, answer.status == 200,
                   answer.body.withUnsafeReadableBytes({ ChatListAnswer.isComplete($0, expected: reader.chats) }) {
                    tally.answered(at: monotonicNanos(), after: answer.nanos)
                    if index.isMultiple(of: 2) { bytes.value.many = answer.body.readableBytes } else { bytes.value.few = answer.body.readableBytes }
                } else {
                    tally.error()
                }
                step(index + 1)
            }
        }
        loop.execute { step(0) }
        say("rest-chat-list: alternating the two lists on one connection; warm-up \(options.warmup) s, "
            + "measuring \(options.duration) s")
        let cpu = try load.measure(measure, watch: options.watch, unit: "lists") {
            try loop.submit { stats.value.many.tally.answered + stats.value.few.tally.answered }.wait()
        }
        try done.futureResult.wait()
        let (manyTally, fewTally) = try loop.submit { (stats.value.many.tally, stats.value.few.tally) }.wait()
        let sizes = try loop.submit { bytes.value }.wait()
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
        report.add("few_lists_per_s", Double(fewTally.answered) / seconds, digits: 1)
        report.add("few_bytes", sizes.few)
        report.addLatency(fewTally.latency, prefix: "few_")
        report.add("errors", manyTally.errors + fewTally.errors)
        report.add("loadgen_cpu", cpu.generator, digits: 2)
        report.append(cpu.processes)
        say(String(format: "rest-chat-list: %d chats p50 %.2f ms, p99 %.2f ms (%d bytes); %d chats p50 %.2f ms, p99 %.2f ms; errors %d",
                   options.chats, Report.millis(manyTally.latency, 50), Report.millis(manyTally.latency, 99), sizes.many,
                   options.fewChats, Report.millis(fewTally.latency, 50), Report.millis(fewTally.latency, 99),
                   manyTally.errors + fewTally.errors))
        return report
    }
}
