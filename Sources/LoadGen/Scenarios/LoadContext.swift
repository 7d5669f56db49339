import NIOCore
import NIOPosix

/// What every scenario runs with: the options, nginx's endpoint and the event loops.
struct LoadContext {
    let options: Options
    let endpoint: Endpoint
    let group: MultiThreadedEventLoopGroup
    let loops: [EventLoop]

    init(options: Options) throws {
        self.options = options
        endpoint = try Endpoint(host: options.host, port: options.port, sourceCount: options.effectiveSources,
                                protocolVersion: options.protocolVersion)
        group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
        loops = Array(group.makeIterator())
    }

    /// Fixtures over `connectConcurrency`-bounded parallel sessions (at most 64).
    func fixtures() -> Fixtures {
        Fixtures(endpoint: endpoint, group: group, concurrency: min(64, options.connectConcurrency))
    }

    /// One `LoopStats` per loop, created on it; index i belongs to `loops[i]`.
    func makeLoopStats() throws -> [NIOLoopBound<LoopStats>] {
        try loops.map { loop in try loop.submit { NIOLoopBound(LoopStats(), eventLoop: loop) }.wait() }
    }

    /// Runs `body` on every loop and waits for all.
    func onEachLoop(_ body: @escaping @Sendable (Int) -> Void) throws {
        let futures = loops.enumerated().map { index, loop in loop.submit { body(index) } }
        try EventLoopFuture.andAllSucceed(futures, on: loops[0]).wait()
    }

    /// Sums a value read on every loop.
    func sumOverLoops(_ read: @escaping @Sendable (Int) -> Int) throws -> Int {
        try loops.enumerated().map { index, loop in loop.submit { read(index) } }
            .reduce(0) { $0 + (try $1.wait()) }
    }

    /// Merges the tallies of `stats`.
    func merged(_ stats: [NIOLoopBound<LoopStats>]) throws -> Tally {
        var total = Tally()
        for bound in stats {
            total.add(try bound.eventLoop.submit { bound.value.tally }.wait())
        }
        return total
    }

    /// Sleeps until `deadline` (monotonic ns).
    func wait(until deadline: UInt64) {
        wait(until: deadline) {}
    }

    /// Sleeps until `deadline` (monotonic ns), calling `tick` about once a second.
    func wait(until deadline: UInt64, tick: () throws -> Void) rethrows {
        while true {
            let now = monotonicNanos()
            guard now < deadline else { return }
            sleepSeconds(min(1.0, Double(deadline - now) / 1e9))
            if monotonicNanos() < deadline { try tick() }
        }
    }

    /// After the load stops: waits (at most `seconds`) until nothing is `outstanding`, so the
    /// answers to the last sends arrive and their sockets close cleanly; what is still
    /// outstanding then is the scenario's to count as lost. The relay answers every send
    /// within its busy timeout (5 s) of arriving, with ERROR if need be: 10 s leaves a round's
    /// time beyond that, so that an overloaded backend's late answers are not counted lost.
    func drain(seconds: Double = 10, outstanding: () throws -> Int) rethrows {
        let deadline = monotonicNanos() + seconds.nanoseconds
        while try outstanding() > 0, monotonicNanos() < deadline { sleepSeconds(0.05) }
    }

    /// The generator's own CPU and the watched processes' CPU over a measured window.
    struct MeasuredCPU {
        /// LoadGen's cores.
        let generator: Double
        /// `cpu_<name>` for every watched process name, and `cpu_machine`.
        let processes: Report
    }

    /// Waits out `window`, printing the growth of `count()` every second as
    /// "  N <unit> in the last second", and measures CPU over it.
    func measure(_ window: MeasureWindow, watch: WatchedProcesses, unit: String,
                 count: () throws -> Int) rethrows -> MeasuredCPU {
        wait(until: window.start)
        let cpu = CPUMeter()
        let watched = WatchedCPUMeter(watch)
        var previous = 0
        try wait(until: window.end) {
            let current = try count()
            say("  \(current - previous) \(unit) in the last second")
            previous = current
        }
        let generator = cpu.coresUsed
        var processes = Report(scenario: "")
        watched.report(into: &processes)
        return MeasuredCPU(generator: generator, processes: processes)
    }

    func shutdown() {
        try? group.syncShutdownGracefully()
    }
}
