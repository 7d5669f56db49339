import Domain
import Foundation
import Logging

// WSRelay: the WebSocket relay behind nginx's /ws, until SIGTERM.

let configuration: Configuration
do {
    configuration = try Configuration.load()
} catch {
    FileHandle.standardError.write(Data("WSRelay: configuration: \(error)\n".utf8))
    exit(78)  // EX_CONFIG
}

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
    return handler
}
let logger = Logger(label: "WSRelay")
signal(SIGPIPE, SIG_IGN)
let signals = SignalWaiter([SIGTERM, SIGINT])

do {
    let server = try RelayServer(configuration: configuration, limits: RelayLimits(), logger: logger)
    let received = signals.wait()
    logger.info("stopping", metadata: ["signal": "\(received)"])
    server.shutdown()
} catch {
    logger.critical("\(error)")
    exit(1)
}
