/// CPU of the watched processes between two points, in cores.
struct WatchedCPUMeter {
    private let processes: WatchedProcesses
    private let start: [String: Double]
    private let startMachine = WatchedProcesses.machineBusySeconds()
    private let startWall = monotonicNanos()

    init(_ processes: WatchedProcesses) {
        self.processes = processes
        start = processes.cpuSeconds()
    }

    /// Adds `cpu_<name>` (cores) for every watched name whose processes all ran throughout.
    func report(into report: inout Report) {
        let wall = Double(monotonicNanos() - startWall) / 1e9
        guard wall > 0 else { return }
        let now = processes.cpuSeconds()
        for name in Set(processes.entries.map(\.name)).sorted() {
            guard let end = now[name], let begin = start[name], end >= begin else { continue }
            report.add("cpu_\(name)", (end - begin) / wall, digits: 2)
        }
        if !processes.entries.isEmpty, let begin = startMachine, let end = WatchedProcesses.machineBusySeconds() {
            report.add("cpu_machine", (end - begin) / wall, digits: 2)
        }
    }
}
