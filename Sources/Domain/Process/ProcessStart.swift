import Foundation
import Logging

/// What both servers do first: read the configuration (exiting with EX_CONFIG and a message
/// naming the variable if it is unusable) and send logs to stderr at `LOG_LEVEL`.
public enum ProcessStart {
    public static func configure(program: String) -> (Configuration, Logger) {
        let configuration: Configuration
        do {
            configuration = try Configuration.load()
        } catch {
            FileHandle.standardError.write(Data("\(program): configuration: \(error)\n".utf8))
            exit(78)  // EX_CONFIG
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
            return handler
        }
        return (configuration, Logger(label: program))
    }
}
