import Foundation
import Logging

/// Writes each log event as one line to a file descriptor (stderr), as text or JSON.
///
/// Written here rather than swift-log's `StreamLogHandler` for two reasons: JSON lines for log
/// shippers, and no lock on the request path — each line is built in its own buffer and goes
/// out in one `write(2)`, which the kernel never interleaves with another thread's (a pipe
/// keeps writes up to `PIPE_BUF`, 4 KiB, whole; longer lines are cut to that).
/// `StreamLogHandler` takes a process-wide lock and `fflush`es under it for every line.
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let format: LogFormat
    private let output: @Sendable ([UInt8]) -> Void

    /// Lines longer than this are cut (see the type's comment).
    public static let maxLineBytes = 4_096

    public init(label: String, format: LogFormat, level: Logger.Level,
                output: @escaping @Sendable ([UInt8]) -> Void = LineLogHandler.writeToStandardError) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        var line = Self.render(format: format, time: Date(), level: event.level, label: label,
                               message: event.message.description, metadata: merged)
        if line.count > Self.maxLineBytes {
            line.removeLast(line.count - Self.maxLineBytes + 1)
            line.append(UInt8(ascii: "\n"))
        }
        output(line)
    }

    /// One line, ending in a newline. Metadata keys are sorted, so lines compare in tests.
    public static func render(format: LogFormat, time: Date, level: Logger.Level, label: String, message: String,
                              metadata: Logger.Metadata) -> [UInt8] {
        let keys = metadata.keys.sorted()
        switch format {
        case .text:
            var line = Array(timestamp(time).utf8)
            line.append(UInt8(ascii: " "))
            line += level.rawValue.utf8
            line.append(UInt8(ascii: " "))
            line += label.utf8
            line += ": ".utf8
            line += oneLine(message).utf8
            for key in keys {
                line.append(UInt8(ascii: " "))
                line += key.utf8
                line.append(UInt8(ascii: "="))
                line += textValue(metadata[key]!).utf8
            }
            line.append(UInt8(ascii: "\n"))
            return line
        case .json:
            var writer = JSONWriter(capacity: 256)
            writer.object { object in
                object.field("time", timestamp(time))
                object.field("level", level.rawValue)
                object.field("logger", label)
                object.field("message", message)
                for key in keys where !["time", "level", "logger", "message"].contains(key) {
                    object.dynamicKey(key)
                    object.string(metadata[key]!.description)
                }
            }
            var line = writer.bytes
            line.append(UInt8(ascii: "\n"))
            return line
        }
    }

    /// RFC 3339 UTC with milliseconds: `2026-12-03T05:50:00.123Z`.
    static func timestamp(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(interval.rounded(.down))
        let milliseconds = Int((interval - Double(seconds)) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(milliseconds), 3))Z"
    }

    /// A value as `key=value` text: bare when it has no space, quote or control character,
    /// else quoted with those escaped, so one event is always one line.
    static func textValue(_ value: Logger.MetadataValue) -> String {
        let text = value.description
        let plain = !text.isEmpty && !text.unicodeScalars.contains { $0 == " " || $0 == "\"" || $0 == "\\" || $0.value < 0x20 || $0.value == 0x7F }
        if plain { return text }
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\r": quoted += "\\r"
            case "\t": quoted += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    quoted += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                        + String(scalar.value, radix: 16)
                } else {
                    quoted.unicodeScalars.append(scalar)
                }
            }
        }
        return quoted + "\""
    }

    /// The message with line breaks escaped: one event, one line.
    static func oneLine(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }) else { return text }
        return text.replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// One `write(2)` to stderr, retried after a signal interrupts it.
    @Sendable public static func writeToStandardError(_ line: [UInt8]) {
        line.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}
