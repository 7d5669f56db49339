import Dispatch
import Domain
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Storage

/// The relay's own HTTP answers on its socket, beside `/ws`: `GET /metrics` (Prometheus text,
/// for nginx's `/metrics/relay`) and `GET /healthz` (for FCGIApp's `/healthz`). nginx proxies
/// only `= /ws` and `= /metrics/relay` here, so clients reach neither path directly.
final class RelayOperations: Sendable {
    private let export: MetricsExport
    private let metrics: RelayMetrics
    private let dispatcher: Dispatcher
    private let registry: ConnectionRegistry
    private let database: DatabaseLocation
    private let logger: Logger
    /// One thread for the scrape's database read (the head seq), never an event loop.
    private let pool: NIOThreadPool

    /// A storage thread that finished no round for this long is stalled: rounds run at least
    /// every poll interval (250 ms), and a commit waits at most the busy timeout (5 s).
    static let stalledAfterSeconds = 10.0

    init(export: MetricsExport, metrics: RelayMetrics, dispatcher: Dispatcher, registry: ConnectionRegistry,
         database: DatabaseLocation, logger: Logger) {
        self.export = export
        self.metrics = metrics
        self.dispatcher = dispatcher
        self.registry = registry
        self.database = database
        self.logger = logger
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    func shutdown() {
        try? pool.syncShutdownGracefully()
    }

    /// The paths this answers, from the request line's path (no query).
    enum Endpoint {
        case metrics, health

        init?(path: String) {
            switch path {
            case "/metrics": self = .metrics
            case "/healthz": self = .health
            default: return nil
            }
        }
    }

    struct Answer {
        let status: HTTPResponseStatus
        let contentType: String
        let body: [UInt8]
    }

    func answer(_ endpoint: Endpoint, on eventLoop: EventLoop) -> EventLoopFuture<Answer> {
        switch endpoint {
        case .health:
            return eventLoop.makeSucceededFuture(health())
        case .metrics:
            return pool.runIfActive(eventLoop: eventLoop) { [self] in
                do {
                    let head = try database.openStore().latestSeq()
                    metrics.recordPositions(head: head, delivered: dispatcher.deliveryCursor, registered: registry.count)
                } catch {
                    // The rest of the metrics still go out; the positions keep their last values.
                    logger.warning("metrics: reading the head seq failed", metadata: ["error": "\(error)"])
                }
                metrics.database.recordMemory()
                metrics.heap.record()
                return Answer(status: .ok, contentType: MetricsExport.contentType, body: export.render())
            }
        }
    }

    /// 200 `{"status":"ok"}` while the storage thread runs rounds; 503
    /// `{"status":"down","storage":"stalled"}` when it has not for `stalledAfterSeconds`.
    func health() -> Answer {
        let stalled = dispatcher.secondsSinceLastRound > Self.stalledAfterSeconds
        let body = stalled ? #"{"status":"down","storage":"stalled"}"# : #"{"status":"ok"}"#
        return Answer(status: stalled ? .serviceUnavailable : .ok, contentType: "application/json; charset=utf-8",
                      body: Array(body.utf8))
    }

    /// nginx's `$request_id` from `X-Request-Id`: 1–64 of `[A-Za-z0-9-]`, else `-`, so a log
    /// line never carries what a client made up.
    static func requestID(_ headers: HTTPHeaders) -> String {
        guard let value = headers.first(name: "x-request-id"), (1...64).contains(value.utf8.count),
              value.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0)
                  || (0x61...0x7A).contains($0) })
        else { return "-" }
        return value
    }
}
