import Domain
import Foundation
import Logging

// WSRelay: the WebSocket relay behind nginx's /ws, until SIGTERM.

let (configuration, logger) = ProcessStart.configure(program: "WSRelay")
signal(SIGPIPE, SIG_IGN)
let signals = SignalWaiter([SIGTERM, SIGINT])

do {
    try configuration.checkRelayInstance()
    HeapTrimmer.start()
    let server = try RelayServer(configuration: configuration, limits: RelayLimits(), logger: logger,
                                 metrics: MetricsExport())
    let received = signals.wait()
    logger.info("stopping", metadata: ["signal": "\(received)"])
    server.shutdown()
} catch {
    logger.critical("\(error)")
    exit(1)
}
