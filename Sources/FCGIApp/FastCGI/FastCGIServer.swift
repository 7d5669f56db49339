import CFastCGI
import Domain
import Foundation
import Logging
import Storage

/// The libfcgi accept loops: two Unix sockets, each with its own pool of worker threads (one
/// for the API, one for uploads, which nginx sends to their own socket so that slow uploads
/// cannot hold every thread). Each worker has its own SQLite connection and turns FastCGI
/// requests into `Request`s for the router.
///
/// Blocking calls (accept, SQLite) run on these threads we own, never on Swift's
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
    private let checkpointer: Checkpointer
    /// Revoked sessions, followed from the database for every worker's token checks.
    private let revokedSessions: RevokedSessions
    /// Every worker's bound on password hashing.
    private let passwords: PasswordSlots
    /// The one sender of relay notifications; nil if its socket could not be created (the relay
    /// then finds new messages by polling the database).
    private let notifier: RelayNotifier?

    init(configuration: Configuration, router: Router, logger: Logger) throws {
        self.configuration = configuration
        self.router = router
        self.logger = logger
        // SQLite's checkpoint threshold: at 10,000 pages, as on the relay, each checkpoint
        // a commit completes syncs more, and REST write p99 rose from 16 to 21–31 ms. The
        // background copy every 10 ms instead of 100 leaves those checkpoints less to do: REST
        // write p99 23–31 → 20.5–22 ms, three runs each, alternating (the relay's checkpointer
        // keeps 100 ms; each only runs after its own process's commits).
        checkpointer = Checkpointer(path: configuration.databasePath, interval: 0.01)
        writer = SerializedStore(try Store.writer(path: configuration.databasePath, autocheckpointPages: 1_000,
                                                  checkpointer: checkpointer),
                                 sendLimit: configuration.rateLimits.send)
        revokedSessions = try RevokedSessions(path: configuration.databasePath)
        passwords = try PasswordSlots(workers: configuration.fcgiWorkers)
        notifier = (try? NotificationSender(socketPath: configuration.notifySocketPath)).map { RelayNotifier(sender: $0) }
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
        checkpointer.start { error in logger.error("checkpoint failed", metadata: ["error": "\(error)"]) }
        defer { checkpointer.stop() }
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

    /// One thread's loop: accept, build a `Request`, route, handle, write, finish.
    private final class Worker: @unchecked Sendable {
        // @unchecked: a Worker is created on the main thread and then used only by the one
        // thread it is handed to; its Store and FastCGIRequest never leave that thread.
        private let server: FastCGIServer
        private let context: Context
        private let request: FastCGIRequest

        init(server: FastCGIServer, listeningSocket: Int32, name: String) throws {
            self.server = server
            let configuration = server.configuration
            var logger = server.logger
            logger[metadataKey: "worker"] = "\(name)"
            context = Context(store: try Store(path: configuration.databasePath), writer: server.writer,
                              tokens: TokenService(secret: configuration.jwtSecret, lifetime: configuration.tokenLifetime),
                              revokedSessions: server.revokedSessions, passwords: server.passwords,
                              notifier: server.notifier, configuration: configuration, logger: logger,
                              now: { Int64(time(nil)) })
            request = FastCGIRequest(listeningSocket: listeningSocket)
        }

        func serve() {
            while server.accept(request) {
                handleCurrent()
                request.finish()
            }
        }

        private func handleCurrent() {
            let method = request.parameter("REQUEST_METHOD") ?? "GET"
            let requestID = request.parameter("REQUEST_ID") ?? "-"
            let response: Response
            do {
                var httpRequest = try Request(method: method, uri: request.parameter("REQUEST_URI") ?? "/",
                                              headers: request.headers(), id: requestID, body: request.body)
                httpRequest.clientAddress = request.parameter("REMOTE_ADDR")
                let handler = try server.router.resolve(&httpRequest)
                response = try handler(&httpRequest, context)
            } catch {
                let (httpError, isServerFault) = HTTPError.from(error)
                if isServerFault {
                    // The request id goes into this line only: setting it as the logger's metadata
                    // on every request made StreamLogHandler re-render its metadata each time.
                    context.logger.error("request failed", metadata: ["request-id": "\(requestID)", "method": "\(method)",
                                                                      "error": "\(error)"])
                }
                response = httpError.response
            }
            request.write(response, headOnly: method == "HEAD")
        }
    }
}
