import Foundation

/// Other processes (nginx workers, WSRelay, FCGIApp) whose CPU use LoadGen reports over
/// the measured window, from /proc/<pid>/stat, so one report shows which process saturated.
struct WatchedProcesses: Sendable {
    /// `name:pid` pairs; several pids may share a name (nginx workers) and are summed.
    let entries: [(name: String, pid: Int32)]

    static let none = WatchedProcesses(entries: [])

    /// Parses `name:pid[,name:pid...]`.
    static func parse(_ text: String) -> WatchedProcesses? {
        var entries: [(String, Int32)] = []
        for item in text.split(separator: ",") {
            let parts = item.split(separator: ":")
            guard parts.count == 2, let pid = Int32(parts[1]), pid > 0,
                  !parts[0].isEmpty, parts[0].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
            else { return nil }
            entries.append((String(parts[0]), pid))
        }
        return WatchedProcesses(entries: entries)
    }

    /// CPU seconds (user + system) used so far, summed by name; a name with a vanished
    /// process (one that exited or was restarted) is left out.
    func cpuSeconds() -> [String: Double] {
        var total: [String: Double] = [:]
        var vanished: Set<String> = []
        for (name, pid) in entries {
            if let seconds = Self.cpuSeconds(pid: pid) {
                total[name, default: 0] += seconds
            } else {
                vanished.insert(name)
            }
        }
        for name in vanished { total[name] = nil }
        return total
    }

    /// CPU seconds the whole machine has spent busy (everything in /proc/stat's `cpu` line
    /// but idle and iowait), to show how much of it other work took during a run.
    static func machineBusySeconds() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = stat.split(separator: "\n").first, line.hasPrefix("cpu ")
        else { return nil }
        let ticks = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard ticks.count >= 5 else { return nil }
        // user nice system idle iowait irq softirq steal (guest time is already in user).
        let busy = ticks.prefix(8).enumerated().filter { $0.offset != 3 && $0.offset != 4 }.map(\.element)
        return busy.reduce(0, +) / ticksPerSecond
    }

    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    private static func cpuSeconds(pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return nil }
        // After "pid (comm)": state is field 3, utime field 14, stime field 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / ticksPerSecond
    }
}
