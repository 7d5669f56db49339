import CoreMetrics
import Domain
import Foundation
import Logging
import Synchronization
import Testing

@Suite struct LineLogHandlerTests {
    private let time = Date(timeIntervalSince1970: 1_771_502_400.25)  // 2026-02-19T12:00:00.250Z

    private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test func textLinesHaveTimeLevelLabelMessageAndSortedMetadata() {
        let line = LineLogHandler.render(format: .text, time: time, level: .info, label: "FCGIApp", message: "request",
                                         metadata: ["status": "200", "request_id": "abc123", "route": "/chats/:id"])
        #expect(text(line) == "2026-02-19T12:00:00.250Z info FCGIApp: request request_id=abc123 route=/chats/:id status=200\n")
    }

    @Test func textValuesWithSpacesQuotesOrLineBreaksAreQuotedSoOneEventIsOneLine() {
        let line = text(LineLogHandler.render(format: .text, time: time, level: .error, label: "WSRelay",
                                              message: "two\nlines", metadata: ["error": "SQLite error 5: \"busy\"\nagain"]))
        #expect(line == #"2026-02-19T12:00:00.250Z error WSRelay: two\nlines error="SQLite error 5: \"busy\"\nagain""# + "\n")
        #expect(line.filter { $0 == "\n" }.count == 1)
    }

    @Test func jsonLinesParseWithMetadataAsStringMembers() throws {
        let line = LineLogHandler.render(format: .json, time: time, level: .warning, label: "FCGIApp",
                                         message: "say \"hi\"\n", metadata: ["status": "503", "route": "/healthz",
                                                                             "list": ["a", "b"]])
        #expect(line.last == UInt8(ascii: "\n"))
        #expect(line.dropLast().contains(UInt8(ascii: "\n")) == false)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: String])
        #expect(object == ["time": "2026-02-19T12:00:00.250Z", "level": "warning", "logger": "FCGIApp",
                           "message": "say \"hi\"\n", "status": "503", "route": "/healthz", "list": #"["a", "b"]"#])
    }

    @Test func metadataCannotOverwriteTheFixedJSONMembers() throws {
        let line = LineLogHandler.render(format: .json, time: time, level: .info, label: "x", message: "m",
                                         metadata: ["level": "critical", "message": "forged"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: String])
        #expect(object["level"] == "info")
        #expect(object["message"] == "m")
    }

    @Test func theHandlerMergesItsMetadataWithTheEventsAndCutsLongLines() throws {
        let lines = Mutex<[String]>([])
        var handler = LineLogHandler(label: "test", format: .json, level: .info) { bytes in
            lines.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) }
        }
        handler[metadataKey: "worker"] = "w1"
        let logger = Logger(label: "test") { _ in handler }
        logger.info("hello", metadata: ["request_id": "r1"])
        logger.debug("below the level")
        logger.info("long", metadata: ["blob": .string(String(repeating: "x", count: 10_000))])
        let written = lines.withLock { $0 }
        #expect(written.count == 2)
        let first = try #require(try JSONSerialization.jsonObject(with: Data(written[0].utf8)) as? [String: String])
        #expect(first["worker"] == "w1")
        #expect(first["request_id"] == "r1")
        #expect(written[1].utf8.count == LineLogHandler.maxLineBytes)
        #expect(written[1].hasSuffix("\n"))
    }

    @Test func logFormatComesFromTheEnvironment() throws {
        let directory = try TemporaryDirectory()
        func format(_ value: String?) throws -> LogFormat {
            var environment = ["DATA_DIR": directory.path, "JWT_SECRET": "0123456789abcdef-secret"]
            environment["LOG_FORMAT"] = value
            return try Configuration(environment: environment).logFormat
        }
        #expect(try format(nil) == .text)
        #expect(try format("json") == .json)
        #expect(try format("JSON") == .json)
        #expect(try format("text") == .text)
        #expect(throws: ConfigurationError.self) { try format("xml") }
    }
}

@Suite struct MetricsExportTests {
    @Test func rendersPrometheusTextWithTheSecondsBuckets() {
        let export = MetricsExport()
        let timer = CoreMetrics.Timer(label: "messenger_test_duration_seconds", dimensions: [("route", "/x")], factory: export.factory)
        timer.recordNanoseconds(3_000_000)  // 3 ms
        timer.recordNanoseconds(20_000_000_000)  // 20 s: only +Inf
        let text = String(decoding: export.render(), as: UTF8.self)
        #expect(text.contains("# TYPE messenger_test_duration_seconds histogram\n"))
        #expect(text.contains(#"messenger_test_duration_seconds_bucket{route="/x",le="0.002"} 0"#))
        #expect(text.contains(#"messenger_test_duration_seconds_bucket{route="/x",le="0.005"} 1"#))
        #expect(text.contains(#"messenger_test_duration_seconds_bucket{route="/x",le="10.0"} 1"#))
        #expect(text.contains(#"messenger_test_duration_seconds_bucket{route="/x",le="+Inf"} 2"#))
        #expect(text.contains(#"messenger_test_duration_seconds_count{route="/x"} 2"#))
    }

    @Test func eachExportHasItsOwnRegistry() {
        let first = MetricsExport()
        let second = MetricsExport()
        CoreMetrics.Counter(label: "messenger_test_total", factory: first.factory).increment(by: 3)
        #expect(String(decoding: first.render(), as: UTF8.self).contains("messenger_test_total 3\n"))
        #expect(!String(decoding: second.render(), as: UTF8.self).contains("messenger_test_total"))
    }
}
