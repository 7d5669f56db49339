import CFastCGI
import Domain
import Foundation
import Logging
import Storage

/// The libfcgi accept loops: two Unix sockets, each with its own pool of worker threads (one
/// for the API, one for uploads, which nginx sends to their own socket so that slow uploads
/// cannot hold every thread). Each worker has its own database connection and turns FastCGI
/// requests into `Request`s for the router.
///
/// Blocking calls (accept, the database's) run on these threads we own, never on Swift's
/// cooperative pool.
final class FastCGIServer: Sendable {
    private let configuration: Configuration
    private let router: Router
    private let logger: Logger
    /// One listening socket and the size and name of its worker pool.
    private struct Listener {
        let socket: Int32
        let path: String
        let workers: Int
        let name: String
    }

    /// The API's socket and the uploads' socket.
    private let listeners: [Listener]
    /// The one write connection all workers share.
    private let writer: SerializedStore
    /// SQLite's background checkpoints; nil on PostgreSQL, which checkpoints itself.
    private let checkpointer: Checkpointer?
    /// Revoked sessions, followed from the database for every worker's token checks.
    private let revokedSessions: RevokedSessions
    /// Every worker's bound on password hashing.
    private let passwords: PasswordSlots
    /// The one sender of relay notifications; nil if its socket could not be created (the relay
    /// then finds new messages by polling the database).
    private let notifier: RelayNotifier?
    /// The process's metrics, rendered for nginx's `/metrics/fcgi`.
    private let metrics: MetricsExport
    private let databaseMetrics: DatabaseMetrics
    /// The malloc heap's gauges, set at each scrape.
    private let heapMetrics: HeapMetrics
    private let relayHealth = RelayHealth()

    init(configuration: Configuration, router: Router, logger: Logger, metrics: MetricsExport) throws {
        self.configuration = configuration
        self.router = router
        self.logger = logger
        self.metrics = metrics
        databaseMetrics = DatabaseMetrics(factory: metrics.factory)
        heapMetrics = HeapMetrics(factory: metrics.factory)
        // SQLite's checkpoint threshold: at 10,000 pages, as on the relay, each checkpoint
        // a commit completes syncs more, and REST write p99 rose from 16 to 21–31 ms. The
        // background copy every 10 ms instead of 100 leaves those checkpoints less to do: REST
        // write p99 23–31 → 20.5–22 ms, three runs each, alternating (the relay's checkpointer
        // keeps 100 ms; each only runs after its own process's commits).
        let location = DatabaseLocation(configuration)
        let writerStore: Store
        switch location {
        case .sqlite(let path):
            let checkpointer = Checkpointer(path: path, interval: 0.01, synchronous: configuration.databaseSynchronous)
            writerStore = try Store.writer(path: path, autocheckpointPages: 1_000, checkpointer: checkpointer,
                                           synchronous: configuration.databaseSynchronous, metrics: databaseMetrics)
            self.checkpointer = checkpointer
        case .postgres:
            writerStore = try location.openStore()
            checkpointer = nil
        }
        writer = SerializedStore(writerStore, metrics: databaseMetrics, sendLimit: configuration.rateLimits.send)
        revokedSessions = try RevokedSessions(location: location)
        passwords = try PasswordSlots(workers: configuration.fcgiWorkers)
        notifier = (try? NotificationSender(socketPaths: configuration.notifySocketPaths())).map { RelayNotifier(sender: $0) }
        try FileManager.default.createDirectory(atPath: configuration.runDirectory, withIntermediateDirectories: true)
        guard FCGX_Init() == 0 else { throw ConfigurationError("FCGX_Init failed") }
        var listeners: [Listener] = []
        for (path, workers, name) in [(configuration.fastCGISocketPath, configuration.fcgiWorkers, "fcgi-worker"),
                                      (configuration.fastCGIUploadSocketPath, configuration.fcgiUploadWorkers, "fcgi-upload")] {
            unlink(path)
            let socket = FCGX_OpenSocket(path, 1024)
            guard socket >= 0 else { throw ConfigurationError("cannot listen on \(path): \(String(cString: strerror(errno)))") }
            try SocketPermissions.apply(path: path, group: configuration.socketGroup)
            listeners.append(Listener(socket: socket, path: path, workers: workers, name: name))
        }
        self.listeners = listeners
    }

    /// Serves until SIGTERM or SIGINT, then lets in-flight requests finish and returns.
    func run() throws {
        let signals = SignalWaiter([SIGTERM, SIGINT])
        let logger = self.logger
        checkpointer?.start { error in logger.error("checkpoint failed", metadata: ["error": "\(error)"]) }
        defer { checkpointer?.stop() }
        notifier?.start()
        defer { notifier?.stop() }
        revokedSessions.start { error in logger.error("reading session revocations failed", metadata: ["error": "\(error)"]) }
        defer { revokedSessions.stop() }
        let done = DispatchGroup()
        for listener in listeners {
            for index in 0..<listener.workers {
                let name = "\(listener.name)-\(index)"
                let worker = try Worker(server: self, listeningSocket: listener.socket, name: name)
                done.enter()
                let thread = Thread { worker.serve(); done.leave() }
                thread.name = name
                thread.stackSize = 1 << 20
                thread.start()
            }
            logger.info("FastCGI listening", metadata: ["socket": "\(listener.path)", "workers": "\(listener.workers)"])
        }
        let signal = signals.wait()
        logger.info("stopping", metadata: ["signal": "\(signal)"])
        FCGX_ShutdownPending()
        // Wakes the threads blocked in accept(); the others see the shutdown flag.
        for listener in listeners { shutdown(listener.socket, Int32(SHUT_RDWR)) }
        if done.wait(timeout: .now() + 10) == .timedOut {
            logger.warning("workers still busy after 10 s; exiting anyway")
        }
        for listener in listeners { unlink(listener.path) }
    }

    /// No lock around accept, unlike libfcgi's threaded example (written for platforms whose
    /// accept() is not thread-safe): on Linux the kernel hands each connection to exactly one
    /// waiting thread, and a lock only added two context switches per request.
    fileprivate func accept(_ request: FastCGIRequest) -> Bool {
        request.accept()
    }

    /// What the log line and the metrics of one request say.
    private struct Served {
        let requestID: String
        let method: String
        let route: String
        let status: Int
    }

    /// One thread's loop: accept, build a `Request`, route, handle, write, finish, then count
    /// and log the request.
    private final class Worker: @unchecked Sendable {
        // @unchecked: a Worker is created on the main thread and then used only by the one
        // thread it is handed to; its Store, FastCGIRequest and RequestMetrics never leave
        // that thread.
        private let server: FastCGIServer
        private let context: Context
        private let request: FastCGIRequest
        private let requestMetrics: RequestMetrics

        init(server: FastCGIServer, listeningSocket: Int32, name: String) throws {
            self.server = server
            let configuration = server.configuration
            var logger = server.logger
            logger[metadataKey: "worker"] = "\(name)"
            context = Context(store: try DatabaseLocation(configuration)
                                .openStore(synchronous: configuration.databaseSynchronous, metrics: server.databaseMetrics),
                              writer: server.writer,
                              tokens: TokenService(secret: configuration.jwtSecret, lifetime: configuration.tokenLifetime),
                              revokedSessions: server.revokedSessions, passwords: server.passwords,
                              notifier: server.notifier, configuration: configuration, logger: logger,
                              now: { Int64(time(nil)) }, relayHealth: server.relayHealth)
            request = FastCGIRequest(listeningSocket: listeningSocket)
            requestMetrics = RequestMetrics(factory: server.metrics.factory)
        }

        func serve() {
            while server.accept(request) {
                let started = Elapsed.now()
                let served = handleCurrent()
                request.finish()
                endLeftovers(after: served)
                // After finish: nginx has the whole answer before the request is counted and logged.
                let elapsed = Elapsed.now() &- started
                requestMetrics.record(route: served.route, method: served.method, status: served.status,
                                      nanoseconds: elapsed)
                // One line per request. The route pattern, never the path or query (a search
                // text, ids) and never a header (the token).
                context.logger.info("request", metadata: [
                    "request_id": .string(served.requestID), "method": .string(served.method),
                    "route": .string(served.route), "status": .string(String(served.status)),
                    "duration_ms": .string(Elapsed.milliseconds(elapsed)),
                ])
            }
        }

        /// A query a handler left in progress would pin this worker's read snapshot, and the
        /// worker's next requests would not see what was committed since (a user who just
        /// logged in would be "not found"). Ended here, and logged: it is a bug to fix.
        private func endLeftovers(after served: Served) {
            let left = context.store.database.endLeftovers()
            guard !left.isEmpty else { return }
            context.logger.error("request left the database connection in progress", metadata: [
                "request_id": .string(served.requestID), "route": .string(served.route),
                "statements": .string(left.joined(separator: " | ")),
            ])
        }

        private func handleCurrent() -> Served {
            let method = request.parameter("REQUEST_METHOD") ?? "GET"
            let requestID = request.parameter("REQUEST_ID") ?? "-"
            // Set only by nginx's `/metrics/fcgi` location (a FastCGI parameter, which no client
            // header can become): the metrics are reached through that location alone.
            if request.parameter("MESSENGER_INTERNAL") == "metrics" {
                server.databaseMetrics.recordMemory()
                server.heapMetrics.record()
                let response = Response(status: .ok, headers: [("Content-Type", MetricsExport.contentType),
                                                               ("Cache-Control", "no-store")],
                                        body: server.metrics.render())
                request.write(response, headOnly: method == "HEAD")
                return Served(requestID: requestID, method: method, route: "/metrics/fcgi", status: 200)
            }
            var route = RequestMetrics.unmatchedRoute
            let response: Response
            do {
                var httpRequest = try Request(method: method, uri: request.parameter("REQUEST_URI") ?? "/",
                                              headers: request.headers(), id: requestID, body: request.body)
                httpRequest.clientAddress = request.parameter("REMOTE_ADDR")
                let handler = try server.router.resolve(&httpRequest)
                route = httpRequest.route ?? route
                response = try handler(&httpRequest, context)
            } catch {
                let (httpError, isServerFault) = HTTPError.from(error)
                if isServerFault {
                    // The request id goes into this line only: setting it as the logger's metadata
                    // on every request re-rendered the metadata for each line.
                    context.logger.error("request failed", metadata: ["request_id": "\(requestID)", "method": "\(method)",
                                                                      "route": "\(route)", "error": "\(error)"])
                }
                response = httpError.response
            }
            request.write(response, headOnly: method == "HEAD")
            return Served(requestID: requestID, method: method, route: route, status: response.status.code)
        }
    }
}
