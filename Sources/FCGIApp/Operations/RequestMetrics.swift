import CoreMetrics

/// One worker thread's record of the requests it served: `messenger_http_requests_total` by
/// route, method and status, and `messenger_http_request_duration_seconds` by route and method.
///
/// The swift-metrics handles are looked up once per label set and kept here, per thread, so a
/// request costs two dictionary lookups, one atomic add (the counter) and the histogram's own
/// short lock — never the registry's lock.
final class RequestMetrics {
    private struct CountKey: Hashable {
        let route: String
        let method: String
        let status: Int
    }

    private struct TimeKey: Hashable {
        let route: String
        let method: String
    }

    private let factory: any MetricsFactory
    private var counters: [CountKey: Counter] = [:]
    private var timers: [TimeKey: CoreMetrics.Timer] = [:]

    /// The `route` label of a request no route matched (404, 405, a malformed path): one
    /// label for all of them, so that scanners cannot grow the series without bound.
    static let unmatchedRoute = "unmatched"

    /// Methods that keep their name as a label; any other is `OTHER` (nginx passes any token).
    static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    func record(route: String, method: String, status: Int, nanoseconds: UInt64) {
        let method = Self.knownMethods.contains(method) ? method : "OTHER"
        let countKey = CountKey(route: route, method: method, status: status)
        let counter: Counter
        if let known = counters[countKey] {
            counter = known
        } else {
            counter = Counter(label: "messenger_http_requests_total",
                              dimensions: [("route", route), ("method", method), ("status", String(status))],
                              factory: factory)
            counters[countKey] = counter
        }
        counter.increment()
        let timeKey = TimeKey(route: route, method: method)
        let timer: CoreMetrics.Timer
        if let known = timers[timeKey] {
            timer = known
        } else {
            timer = CoreMetrics.Timer(label: "messenger_http_request_duration_seconds",
                          dimensions: [("route", route), ("method", method)], factory: factory)
            timers[timeKey] = timer
        }
        timer.recordNanoseconds(Int64(clamping: nanoseconds))
    }
}

@available(*, unavailable)
extension RequestMetrics: Sendable {}
