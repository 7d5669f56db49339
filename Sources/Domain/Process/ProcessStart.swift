import Foundation
import Logging

/// What both servers do first: read the configuration (exiting with EX_CONFIG and a message
/// naming the variable if it is unusable) and send logs to stderr at `LOG_LEVEL`, as
/// `LOG_FORMAT` says (`LineLogHandler`).
public enum ProcessStart {
    public static func configure(program: String) -> (Configuration, Logger) {
        let configuration: Configuration
        do {
            configuration = try Configuration.load()
        } catch {
            FileHandle.standardError.write(Data("\(program): configuration: \(error)\n".utf8))
            exit(78)  // EX_CONFIG
        }
        let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        let format = configuration.logFormat
        LoggingSystem.bootstrap { label in
            LineLogHandler(label: label, format: format, level: level)
        }
        // With several instances of a kind, each line says which one wrote it.
        let several = configuration.fcgiInstances > 1 || configuration.relayInstances > 1
        return (configuration, Logger(label: several ? "\(program)-\(configuration.instance)" : program))
    }
}
