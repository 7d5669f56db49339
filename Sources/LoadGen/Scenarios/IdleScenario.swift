import Foundation
import NIOCore

/// ws-idle: N authenticated sockets (one user each), held open so the bench script can
/// read the relay's memory. Prints `ready <open sockets>` on stdout once all are open.
enum IdleScenario {
    static func run(_ load: LoadContext) throws -> Report {
        let options = load.options
        let fixtures = load.fixtures()
        say("ws-idle: logging in \(options.users) users")
        let loginStarted = monotonicNanos()
        let users = try fixtures.login(prefix: options.prefix, count: options.users)
        let loginSeconds = Double(monotonicNanos() - loginStarted) / 1e9
        fixtures.close()

        let events = IdleEvents()
        say("ws-idle: opening \(users.count) sockets")
        let opened = SocketFleet.open(
            count: users.count, endpoint: load.endpoint, loops: load.loops, concurrency: options.connectConcurrency,
            token: { users[$0].token },
            makeBehavior: { _, _ in IdleMember(events: events) })
        let sockets = opened.open
        say("ws-idle: \(sockets.count) sockets open in \(String(format: "%.1f", opened.seconds)) s"
            + (opened.failures > 0 ? ", \(opened.failures) failed (\(opened.firstError ?? ""))" : ""))

        let cpu = CPUMeter()
        let watched = WatchedCPUMeter(options.watch)
        FileHandle.standardOutput.write(Data("ready \(sockets.count)\n".utf8))
        load.wait(until: monotonicNanos() + options.hold.nanoseconds)
        let stillOpen = SocketFleet.countOpen(sockets)
        let protocolErrors = SocketFleet.protocolErrors(sockets)
        let coresUsed = cpu.coresUsed
        say("ws-idle: \(stillOpen) of \(sockets.count) sockets still open after \(options.hold) s; closing")
        SocketFleet.close(sockets)

        var report = Report(scenario: options.scenario.rawValue)
        report.add("sockets", sockets.count)
        report.add("open_at_end", stillOpen)
        report.add("connect_failures", opened.failures)
        report.add("protocol_errors", protocolErrors)
        report.add("errors", opened.failures + (sockets.count - stillOpen) + events.errors)
        report.add("login_per_s", Double(users.count) / loginSeconds, digits: 0)
        report.add("handshakes_per_s", Double(sockets.count) / opened.seconds, digits: 0)
        report.add("hold_s", options.hold, digits: 1)
        report.add("loadgen_cpu", coresUsed, digits: 2)
        watched.report(into: &report)
        if let firstError = opened.firstError { report.add("first_error", firstError) }
        return report
    }
}
