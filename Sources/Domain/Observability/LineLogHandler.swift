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

    /// The JSON members every line has; metadata cannot replace them.
    static let fixedMembers: Set<String> = ["time", "level", "logger", "message"]

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
        var line: [UInt8]
        if let provider = metadataProvider {
            var merged = metadata
            merged.merge(provider.get()) { _, new in new }
            line = Self.render(format: format, time: Date(), level: event.level, label: label,
                               message: event.message.description, metadata: event.metadata ?? [:], defaults: merged)
        } else {
            // The handler's own metadata (FCGIApp's `worker`) fills in without a merged copy.
            line = Self.render(format: format, time: Date(), level: event.level, label: label,
                               message: event.message.description, metadata: event.metadata ?? [:], defaults: metadata)
        }
        if line.count > Self.maxLineBytes {
            line.removeLast(line.count - Self.maxLineBytes + 1)
            line.append(UInt8(ascii: "\n"))
        }
        output(line)
    }

    /// One line, ending in a newline: `metadata`, and those of `defaults` it does not have.
    /// Keys are sorted, so lines compare in tests.
    ///
    /// Written straight into one byte buffer (the timestamp's digits too): FCGIApp writes one
    /// of these per request, and a first version built of Strings cost 10–20 µs of CPU each.
    public static func render(format: LogFormat, time: Date, level: Logger.Level, label: String, message: String,
                              metadata: Logger.Metadata, defaults: Logger.Metadata = [:]) -> [UInt8] {
        var members: [(key: String, value: Logger.MetadataValue)] = []
        members.reserveCapacity(metadata.count + defaults.count)
        for member in metadata { members.append(member) }
        for member in defaults where metadata[member.key] == nil { members.append(member) }
        members.sort { $0.key < $1.key }
        var line: [UInt8] = []
        line.reserveCapacity(256)
        switch format {
        case .text:
            appendTimestamp(time, to: &line)
            line.append(UInt8(ascii: " "))
            line += level.rawValue.utf8
            line.append(UInt8(ascii: " "))
            line += label.utf8
            line += ": ".utf8
            appendOneLine(message, to: &line)
            for (key, value) in members {
                line.append(UInt8(ascii: " "))
                line += key.utf8
                line.append(UInt8(ascii: "="))
                appendTextValue(value, to: &line)
            }
            line.append(UInt8(ascii: "\n"))
            return line
        case .json:
            var stamp: [UInt8] = []
            appendTimestamp(time, to: &stamp)
            var writer = JSONWriter(capacity: 256)
            writer.object { object in
                object.key("time")
                object.raw(CollectionOfOne(UInt8(ascii: "\"")) + stamp + CollectionOfOne(UInt8(ascii: "\"")))
                object.field("level", level.rawValue)
                object.field("logger", label)
                object.field("message", message)
                for (key, value) in members where !Self.fixedMembers.contains(key) {
                    object.dynamicKey(key)
                    object.string(string(value))
                }
            }
            line = writer.bytes
            line.append(UInt8(ascii: "\n"))
            return line
        }
    }

    /// RFC 3339 UTC with milliseconds: `2026-12-03T05:50:00.123Z`.
    static func appendTimestamp(_ date: Date, to line: inout [UInt8]) {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(interval.rounded(.down))
        let milliseconds = Int((interval - Double(seconds)) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func digits(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                line.append(UInt8(ascii: "0") + UInt8((rest / divisor) % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4)
        line.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2)
        line.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2)
        line.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2)
        line.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2)
        line.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2)
        line.append(UInt8(ascii: "."))
        digits(milliseconds, 3)
        line.append(UInt8(ascii: "Z"))
    }

    /// A metadata value's text; a plain string without going through `description`.
    private static func string(_ value: Logger.MetadataValue) -> String {
        if case .string(let text) = value { return text }
        return value.description
    }

    private static func needsQuoting(_ byte: UInt8) -> Bool {
        byte <= 0x20 || byte == 0x7F || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    /// A value as `key=value` text: bare when it has no space, quote or control character,
    /// else quoted with those escaped, so one event is always one line.
    static func appendTextValue(_ value: Logger.MetadataValue, to line: inout [UInt8]) {
        let text = string(value)
        if !text.isEmpty, !text.utf8.contains(where: needsQuoting) {
            line += text.utf8
            return
        }
        line.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): line += #"\""#.utf8
            case UInt8(ascii: "\\"): line += #"\\"#.utf8
            case UInt8(ascii: "\n"): line += #"\n"#.utf8
            case UInt8(ascii: "\r"): line += #"\r"#.utf8
            case UInt8(ascii: "\t"): line += #"\t"#.utf8
            case 0x00..<0x20, 0x7F:
                let hex = Array("0123456789abcdef".utf8)
                line += #"\u00"#.utf8
                line.append(hex[Int(byte >> 4)])
                line.append(hex[Int(byte & 0xF)])
            default: line.append(byte)
            }
        }
        line.append(UInt8(ascii: "\""))
    }

    /// The message with line breaks escaped: one event, one line.
    static func appendOneLine(_ text: String, to line: inout [UInt8]) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\n"): line += #"\n"#.utf8
            case UInt8(ascii: "\r"): line += #"\r"#.utf8
            default: line.append(byte)
            }
        }
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
