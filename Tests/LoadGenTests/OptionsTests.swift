import Testing

@testable import LoadGen

@Suite struct OptionsTests {
    @Test func ingestTakesItsFlagsAndDefaults() throws {
        let command = try WSIngestCommand.parse(["--users", "20", "--window=4", "--rate", "100", "--port", "8080"])
        let options = command.options
        #expect(options.scenario == .wsIngest)
        #expect(options.users == 20 && options.window == 4 && options.rate == 100 && options.port == 8080)
        #expect(WSFanoutCommand.parseOrExit([]).options.window == 16)
    }

    @Test func refusesWhatCouldStartAnUnboundedOrForeignRun() {
        #expect(throws: (any Error).self) { try WSIngestCommand.parse(["--users", "3"]) }
        #expect(throws: (any Error).self) { try WSIngestCommand.parse(["--duration", "1e9"]) }
        #expect(throws: (any Error).self) { try WSFanoutCommand.parse(["--host", "10.0.0.1"]) }
        #expect(throws: (any Error).self) { try WSFanoutCommand.parse(["--users", "10"]) }
        #expect(throws: (any Error).self) { try WSFloorCommand.parse(["--socket", "relative.sock"]) }
    }

    @Test func watchListParses() throws {
        let command = try WSIdleCommand.parse(["--watch", "nginx:12,nginx:13,WSRelay:7"])
        #expect(command.options.watch.entries.count == 3)
    }
}
