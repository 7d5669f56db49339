import NIOCore

/// ws-presence: a presence storm. M members connect (protocol 2, until READY) and disconnect
/// in a loop (`PresenceFlapper`) while O observers stay connected and count the PRESENCE
/// frames they get (`PresenceObserver`). Every member shares a chat with every observer:
/// observer `i` creates a group with all members (a group holds at most 1,001). The report
/// gives cycles/s, the most PRESENCE frames one observer got from one member in the
/// measured window (the relay's rule: one per user per 5 s), and the relay's CPU via --watch.
enum PresenceScenario {
    static func run(_ load: LoadContext) throws -> Report {
        let options = load.options
        let fixtures = load.fixtures()
        say("ws-presence: logging in \(options.members) members and \(options.observers) observers")
        let users = try fixtures.login(prefix: options.prefix, count: options.members + options.observers)
        let members = Array(users.prefix(options.members))
        let observers = Array(users.dropFirst(options.members))
        let memberIDs = try fixtures.userIDs(members)
        let prefix = options.prefix
        _ = try fixtures.groupChats(count: observers.count, name: { "\(prefix) presence \($0)" },
                                    creator: { observers[$0] }, participants: memberIDs)
        fixtures.close()

        let measure = MeasureWindow(warmup: options.warmup, duration: options.duration)
        say("ws-presence: opening \(observers.count) observer sockets")
        let opened = SocketFleet.open(
            count: observers.count, endpoint: load.endpoint, loops: load.loops,
            concurrency: options.connectConcurrency, token: { observers[$0].token },
            makeBehavior: { _, _ in PresenceObserver(window: measure) })
        let watching = opened.open
        sleepSeconds(0.5)

        let stats = try load.makeLoopStats()
        try load.onEachLoop { stats[$0].value.window = measure }
        let flappers = try members.indices.map { index -> NIOLoopBound<PresenceFlapper> in
            let loop = load.loops[index % load.loops.count]
            return try loop.submit {
                NIOLoopBound(PresenceFlapper(endpoint: load.endpoint, loop: loop, index: index,
                                             token: members[index].token, stats: stats[index % stats.count].value),
                             eventLoop: loop)
            }.wait()
        }
        for flapper in flappers { flapper.eventLoop.execute { flapper.value.start() } }
        say("ws-presence: \(members.count) members flapping; warm-up \(options.warmup) s, measuring \(options.duration) s")
        let cpu = try load.measure(measure, watch: options.watch, unit: "connect/disconnect cycles") {
            try load.sumOverLoops { stats[$0].value.tally.answered }
        }
        for flapper in flappers { flapper.eventLoop.execute { flapper.value.stop() } }
        let settle = monotonicNanos() + 5.0.nanoseconds
        while monotonicNanos() < settle {
            let cycling = flappers.reduce(0) { total, flapper in
                total + ((try? flapper.eventLoop.submit { flapper.value.isCycling ? 1 : 0 }.wait()) ?? 1)
            }
            if cycling == 0 { break }
            sleepSeconds(0.1)
        }

        let counts = try watching.map { socket in
            try socket.eventLoop.submit { () -> (inWindow: [UInt64: Int], heardOf: Int, errors: Int) in
                let observer = socket.value.behavior as! PresenceObserver
                observer.stop()
                return (observer.inWindow, observer.heardOf.count, observer.errors)
            }.wait()
        }
        let ending = SocketFleet.end(watching)
        let tally = try load.merged(stats)

        let seconds = measure.seconds
        let frames = counts.reduce(0) { $0 + $1.inWindow.values.reduce(0, +) }
        let perUserMax = counts.flatMap(\.inWindow.values).max() ?? 0
        var report = Report(scenario: options.scenario.rawValue)
        report.add("members", members.count)
        report.add("observers", watching.count)
        report.add("duration_s", seconds, digits: 2)
        report.add("cycles", tally.answered)
        report.add("cycles_per_s", Double(tally.answered) / seconds, digits: 1)
        report.addLatency(tally.latency)
        report.add("presence_frames", frames)
        report.add("presence_per_observer_per_user", Double(frames) / Double(max(1, watching.count * members.count)),
                   digits: 3)
        report.add("presence_per_user_max", perUserMax)
        report.add("presence_heard_of_min", counts.map(\.heardOf).min() ?? 0)
        report.add("protocol_errors", ending.protocolErrors)
        report.add("errors", tally.errors + counts.reduce(0) { $0 + $1.errors } + opened.failures
                   + (watching.count - ending.stillOpen))
        report.add("connect_failures", opened.failures)
        report.add("loadgen_cpu", cpu.generator, digits: 2)
        report.append(cpu.processes)
        say(String(format: "ws-presence: %.0f cycles/s, %d PRESENCE frames to %d observers in %.1f s, at most %d from one member to one observer; errors %d",
                   Double(tally.answered) / seconds, frames, watching.count, seconds, perUserMax, tally.errors))
        return report
    }
}
