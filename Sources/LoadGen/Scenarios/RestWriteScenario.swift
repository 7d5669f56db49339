import NIOCore

/// rest-write: `POST /chats/:id/messages` over N keep-alive connections (one user each,
/// two per direct chat), each sending its next request when the last one is answered, or
/// paced to --rate in total. Committed (HTTP 200) messages/s and request latency; paced,
/// latency counts from each request's scheduled time. A 200 counts only when its body is the
/// stored message: an id, this chat, this content. `committed_total` (every such 200 of the
/// run) is what scripts/bench compares with the rows in the database.
enum RestWriteScenario {
    static func run(_ load: LoadContext) throws -> Report {
        let options = load.options
        let fixtures = load.fixtures()
        say("rest-write: logging in \(options.users) users")
        let users = try fixtures.login(prefix: options.prefix, count: options.users)
        let chats = try fixtures.directChats(pairing: users)
        fixtures.close()

        let stats = try load.makeLoopStats()
        let sessions = (0..<users.count).map {
            HTTPSession(endpoint: load.endpoint, loop: load.loops[$0 % load.loops.count], index: $0)
        }
        let measure = MeasureWindow(warmup: options.warmup, duration: options.duration)
        try load.onEachLoop { stats[$0].value.window = measure }
        let interval: UInt64 = options.rate > 0 ? UInt64(Double(users.count) / options.rate * 1e9) : 0
        let loadStart = monotonicNanos()
        say("rest-write: \(users.count) connections " + (options.rate > 0 ? "at \(options.rate) req/s" : "flat out")
            + "; warm-up \(options.warmup) s, measuring \(options.duration) s")

        let finished = sessions.indices.map { index in
            let session = sessions[index]
            let done = session.loop.makePromise(of: Void.self)
            let chatID = chats[index / 2]
            let path = "/chats/\(chatID)/messages"
            let token = users[index].token
            let loopStats = stats[index % stats.count]
            // Spread the paced sessions' first sends over one interval.
            let offset = interval * UInt64(index) / UInt64(max(1, sessions.count))
            @Sendable func step(_ sequence: UInt64) {
                let now = monotonicNanos()
                guard now < measure.end else { return done.succeed() }
                // Flat out, latency counts from the request's write (`answer.nanos`); paced,
                // from when the schedule wanted it sent, so a request held up behind a slow
                // answer is not left out of the histogram.
                let scheduled: UInt64? = interval > 0 ? loadStart + offset + sequence * interval : nil
                if let scheduled, now < scheduled {
                    session.loop.scheduleTask(deadline: .uptimeNanoseconds(scheduled)) { step(sequence) }
                    return
                }
                let call = HTTPCall.post(path, json: #"{"content":"r\#(sequence)"}"#, token: token)
                session.request(call, retryOnClose: false).whenComplete { result in
                    let stats = loopStats.value
                    stats.sent(at: now)
                    switch result {
                    case .success(let answer) where answer.status == 200
                        && Self.isStoredMessage(answer, chatID: chatID, sequence: sequence):
                        let answeredAt = monotonicNanos()
                        stats.answered(at: answeredAt, after: scheduled.map { answeredAt &- $0 } ?? answer.nanos)
                        step(sequence + 1)
                    case .success, .failure:
                        stats.error()
                        // Do not spin on a failing server.
                        session.loop.scheduleTask(in: .milliseconds(10)) { step(sequence + 1) }
                    }
                }
            }
            session.loop.execute { step(0) }
            return done.futureResult
        }

        let cpu = try load.measure(measure, watch: options.watch, unit: "messages committed") {
            try load.sumOverLoops { stats[$0].value.tally.answered }
        }
        try EventLoopFuture.andAllComplete(finished, on: load.loops[0]).wait()
        let tally = try load.merged(stats)
        for session in sessions { _ = try? session.close().wait() }

        let seconds = measure.seconds
        var report = Report(scenario: options.scenario.rawValue)
        report.add("connections", users.count)
        report.add("target_rate", options.rate, digits: 0)
        report.add("duration_s", seconds, digits: 2)
        report.add("sent", tally.sent)
        report.add("committed", tally.answered)
        report.add("committed_total", tally.answeredAll)
        report.add("msgs_per_s", Double(tally.answered) / seconds, digits: 0)
        report.addLatency(tally.latency)
        report.add("errors", tally.errors)
        report.add("loadgen_cpu", cpu.generator, digits: 2)
        report.append(cpu.processes)
        say(String(format: "rest-write: %.0f msgs/s committed, p50 %.2f ms, p99 %.2f ms, errors %d, loadgen CPU %.2f cores",
                   Double(tally.answered) / seconds, Report.millis(tally.latency, 50), Report.millis(tally.latency, 99),
                   tally.errors, cpu.generator))
        return report
    }

    /// The answer is the message just posted, as stored: `{"id":N,"chat_id":C,…,"content":"r<seq>",…}`.
    static func isStoredMessage(_ answer: HTTPAnswer, chatID: Int64, sequence: UInt64) -> Bool {
        answer.body.withUnsafeReadableBytes { bytes in
            guard let id = ServerFrameScanner.messageID(in: bytes), id > 0 else { return false }
            return ServerFrameScanner.chatID(in: bytes) == UInt64(chatID)
                && ServerFrameScanner.contentSequence(in: bytes) == sequence
        }
    }
}
