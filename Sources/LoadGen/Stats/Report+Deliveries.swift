import Foundation

extension Report {
    /// What a run judged by its deliveries reports (ws-fanout, ws-reactions): sends,
    /// fully delivered ones and copies per second, send → last member's copy and → each copy,
    /// and everything a clean run has none of. `errors` are the scenario's own (failed
    /// handshakes, sockets closed under it), added to the tally's.
    mutating func addDeliveries(_ tally: Tally, seconds: Double, protocolErrors: Int, errors: Int,
                                connectFailures: Int, cpu: LoadContext.MeasuredCPU) {
        add("sent", tally.sent)
        add("msgs_per_s", Double(tally.answered) / seconds, digits: 1)
        add("deliveries_per_s", Double(tally.delivered) / seconds, digits: 0)
        addLatency(tally.latency)
        addLatency(tally.deliveryLatency, prefix: "delivery_")
        addIntegrity(tally)
        add("protocol_errors", protocolErrors)
        add("skipped", tally.skipped)
        add("errors", tally.errors + errors)
        add("connect_failures", connectFailures)
        add("loadgen_cpu", cpu.generator, digits: 2)
        append(cpu.processes)
    }

    /// The one-line summary of such a run, for people: `copies` and `sends` name what was
    /// counted ("deliveries", "msgs").
    static func deliveriesSummary(_ scenario: String, copies: String, sends: String, tally: Tally, seconds: Double,
                                  members: Int, errors: Int, generator: Double) -> String {
        "\(scenario): " + String(format: "%.0f", Double(tally.delivered) / seconds) + " \(copies)/s ("
            + String(format: "%.1f", Double(tally.answered) / seconds) + " \(sends)/s to \(members) members), "
            + String(format: "last-delivery p50 %.2f ms, p99 %.2f ms, lost %d, gaps %d, duplicates %d, errors %d, loadgen CPU %.2f cores",
                     millis(tally.latency, 50), millis(tally.latency, 99), tally.lost, tally.gaps, tally.duplicates,
                     tally.errors + errors, generator)
    }
}
