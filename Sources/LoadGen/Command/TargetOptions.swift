import ArgumentParser

/// Where the load goes and how the generator runs: the flags every load scenario shares.
struct TargetOptions: ParsableArguments {
    @Option(help: "nginx address, in 127.0.0.0/8 (LoadGen only loads this machine)")
    var host = "127.0.0.1"

    @Option(help: "nginx port")
    var port = 3000

    @Option(help: "Event loop threads")
    var threads = 2

    @Option(help: "Source addresses 127.0.0.1...N; 0 = as many as the connection count needs")
    var sources = 0

    @Option(help: "WebSocket handshakes or setup requests in flight at once")
    var connectConcurrency = 256

    @Option(help: "Username prefix: 1-12 ASCII letters, digits or _, starting with a letter (default: random)")
    var prefix: String?

    @Option(name: .customLong("protocol"), help: "WebSocket protocol of the sockets: 1 (/ws) or 2 (/ws?v=2, the event stream)")
    var protocolVersion = 1

    @Option(help: ArgumentHelp(
        "Report these processes' CPU (cores) over the measured window as cpu_NAME; pids sharing a name are summed",
        valueName: "name:pid,..."))
    var watch: WatchedProcesses?

    mutating func validate() throws {
        guard Options.isLoopback(host) else {
            throw ValidationError("--host must be an IPv4 address in 127.0.0.0/8 (LoadGen only loads this machine)")
        }
        try Bounds.check(port, 1...65535, "port")
        try Bounds.check(threads, 1...64, "threads")
        try Bounds.check(sources, 0...250, "sources")
        try Bounds.check(connectConcurrency, 1...10_000, "connect-concurrency")
        try Bounds.check(protocolVersion, 1...2, "protocol")
        if let prefix {
            guard (1...12).contains(prefix.count), let first = prefix.first, first.isASCII, first.isLetter,
                  prefix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
            else { throw ValidationError("--prefix must be 1-12 ASCII letters, digits or _, starting with a letter") }
        }
    }

    func apply(to options: inout Options) {
        options.host = host
        options.port = port
        options.threads = threads
        options.sources = sources
        options.connectConcurrency = connectConcurrency
        options.protocolVersion = protocolVersion
        if let prefix { options.prefix = prefix }
        if let watch { options.watch = watch }
    }
}

/// How long the load runs and how fast: the flags of the scenarios that measure a window.
struct WindowOptions: ParsableArguments {
    @Option(help: "Measured seconds")
    var duration = 5.0

    @Option(help: "Seconds of load before measuring")
    var warmup = 1.0

    @Option(help: "Target messages (requests) per second in total; 0 = flat out. Latency is taken from each send's scheduled time")
    var rate = 0.0

    mutating func validate() throws {
        try Bounds.check(duration, 0.1...3600, "duration")
        try Bounds.check(warmup, 0...600, "warmup")
        try Bounds.check(rate, 0...10_000_000, "rate")
    }

    func apply(to options: inout Options) {
        options.duration = duration
        options.warmup = warmup
        options.rate = rate
    }
}

extension Options {
    /// A scenario's options with the shared groups' flags applied.
    init(_ scenario: Scenario, target: TargetOptions, window: WindowOptions? = nil) {
        self.init(scenario: scenario)
        target.apply(to: &self)
        window?.apply(to: &self)
    }
}

extension WatchedProcesses: ExpressibleByArgument {
    init?(argument: String) {
        guard let parsed = Self.parse(argument) else { return nil }
        self = parsed
    }
}

extension Options.FloorCopies: ExpressibleByArgument {}
