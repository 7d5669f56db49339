import CoreMetrics
import Prometheus

/// One process's metrics: the Prometheus registry its `/metrics` answer is rendered from, and
/// the swift-metrics factory every `Counter`, `Timer`, `Meter` and `Recorder` of the process is
/// made with.
///
/// Passed down to whoever records (never `MetricsSystem.bootstrap`, a process-wide singleton),
/// so that each test has a registry of its own.
public struct MetricsExport: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: PrometheusMetricsFactory

    /// Buckets for every `_seconds` histogram: 0.5 ms to 10 s, so that a read of a fraction of a
    /// millisecond and a write that waited on the busy timeout (5 s) both land in a bucket.
    public static let durationBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    /// Buckets for batch sizes (messages per group commit): 1 to FCGIApp's 256 and the relay's 2,000.
    public static let batchBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.durationBuckets
        factory.defaultValueHistogramBuckets = Self.batchBuckets
        self.factory = factory
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric made so far.
    public func render() -> [UInt8] {
        registry.emitToBuffer()
    }

    /// The `Content-Type` of `render()`.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}
