import Foundation
import Histogram

/// The one machine-readable line LoadGen prints on stdout at the end, keys in insertion order.
struct Report {
    private var fields: [String] = []

    init(scenario: String) {
        add("scenario", scenario)
    }

    mutating func add(_ key: String, _ value: String) {
        var escaped = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case _ where scalar.value < 0x20: escaped += String(format: "\\u%04x", scalar.value)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        fields.append("\"\(key)\":\"\(escaped)\"")
    }

    mutating func add(_ key: String, _ value: Int) {
        fields.append("\"\(key)\":\(value)")
    }

    mutating func add(_ key: String, _ value: Double, digits: Int = 2) {
        fields.append("\"\(key)\":\(value.isFinite ? String(format: "%.\(digits)f", value) : "null")")
    }

    /// `<prefix>samples` and `<prefix>p50_ms`, `p90`, `p99`, `p999`, `max` of a microsecond
    /// histogram. An empty histogram reads 0 ms everywhere, so the sample count goes with it:
    /// a reader must not take a run that measured nothing for a fast one.
    mutating func addLatency(_ histogram: Histogram<UInt64>, prefix: String = "") {
        add("\(prefix)samples", Int(histogram.totalCount))
        for (name, percentile) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9)] {
            add("\(prefix)\(name)_ms", Self.millis(histogram, percentile), digits: 3)
        }
        add("\(prefix)max_ms", histogram.totalCount > 0 ? Double(histogram.max) / 1000 : 0, digits: 3)
    }

    static func millis(_ histogram: Histogram<UInt64>, _ percentile: Double) -> Double {
        histogram.totalCount > 0 ? Double(histogram.valueAtPercentile(percentile)) / 1000 : 0
    }

    /// `lost`, `duplicates`, `unknown`, `gaps`: what a clean run has none of.
    mutating func addIntegrity(_ tally: Tally) {
        add("lost", tally.lost)
        add("duplicates", tally.duplicates)
        add("unknown", tally.unknown)
        add("gaps", tally.gaps)
    }

    /// Appends `other`'s fields except its scenario.
    mutating func append(_ other: Report) {
        fields.append(contentsOf: other.fields.dropFirst())
    }

    var line: String { "{" + fields.joined(separator: ",") + "}" }
}

/// Progress and summaries for people, on stderr (stdout carries only "ready" and the JSON line).
func say(_ text: String) {
    FileHandle.standardError.write(Data("[loadgen] \(text)\n".utf8))
}
