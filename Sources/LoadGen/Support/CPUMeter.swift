/// CPU used between two points, as a fraction of one core (2.0 = two cores busy).
struct CPUMeter {
    private let startCPU = ProcessResources.cpuSeconds()
    private let startWall = monotonicNanos()

    var coresUsed: Double {
        let wall = Double(monotonicNanos() - startWall) / 1e9
        return wall > 0 ? (ProcessResources.cpuSeconds() - startCPU) / wall : 0
    }
}
