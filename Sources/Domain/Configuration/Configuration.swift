import Foundation

/// Everything both processes read from the environment, resolved once at start-up and passed
/// down; nothing reads the environment after that.
///
/// Each field documents its variable and default. `.env` in the working directory fills in
/// variables the real environment does not set.
public struct Configuration: Sendable {
    /// `PORT` (3000): where nginx listens. Only the scripts use it; the processes listen on
    /// Unix sockets.
    public var port: Int
    /// `DATA_DIR` (`./var`): database, uploads, sockets, logs. Always absolute here.
    public var dataDirectory: String
    /// `DATABASE_URL` (`sqlite:$DATA_DIR/messenger.db`), in the seed's `sqlite:path` form: the
    /// SQLite database. Also set, to the default, when `postgresURL` is.
    public var databasePath: String
    /// `DATABASE_URL` when it is `postgres://…` or `postgresql://…` (libpq's URI form, host and
    /// port, or `?host=/socket/dir`): the PostgreSQL database both servers then use;
    /// `FCGIApp migrate` applies `migrations/postgres` to it. Never logged: it may hold a
    /// password.
    public var postgresURL: String?
    /// `JWT_SECRET`; if unset, a random secret generated once into `$DATA_DIR/jwt_secret`
    /// (mode 0600). There is no built-in default.
    public var jwtSecret: [UInt8]
    /// `TOKEN_TTL_SECONDS` (86400): how long an issued token is valid.
    public var tokenLifetime: Int64
    /// `FCGI_WORKERS` (2 per core, at least 4): FastCGI worker threads for every request but
    /// uploads, each with its own database connection. A thread is held for a whole request;
    /// API requests are short, and more threads than this only added context switches: with
    /// 8 instead of 4 on 2 cores, `GET /users/:id` cost FCGIApp 41–50 µs of CPU instead of
    /// 32–39, and REST writes ran at 7.0k instead of 8.3k msgs/s.
    public var fcgiWorkers: Int
    /// `FCGI_UPLOAD_WORKERS` (8): worker threads for `POST /upload` alone, on their own socket,
    /// so that slow clients streaming uploads can hold these and never the API's.
    public var fcgiUploadWorkers: Int
    /// `UPLOAD_MAX_BYTES` (50 MiB): the largest accepted upload body.
    public var uploadMaxBytes: Int64
    /// `MIGRATIONS_DIR` (`./migrations`): a folder per database dialect (`sqlite/`, `postgres/`)
    /// of numbered `.sql` files.
    public var migrationsDirectory: String
    /// `SOCKET_GROUP` (none): the group the Unix sockets are given, so that nginx's workers
    /// can connect when they run as another user (as root, nginx's workers run as www-data).
    /// The sockets are always mode 0660.
    public var socketGroup: String?
    /// `EVENT_RETENTION_DAYS` (30, decimals allowed): how long events are kept for clients
    /// resuming with `since`; older ones are pruned (messages never are), and a client resuming
    /// from before them is told to RESYNC.
    public var eventRetentionSeconds: Int64
    /// `EVENT_PRUNE_INTERVAL_SECONDS` (600): how often the relay prunes old events.
    public var eventPruneInterval: Int64
    /// `DB_SYNCHRONOUS` (`normal`): SQLite's `PRAGMA synchronous` on every connection of both
    /// processes. `normal`: a commit survives a crash of the process (kill -9 included), a
    /// power cut may undo the last acknowledged ones. `full`: it survives a power cut too.
    public var databaseSynchronous: DatabaseSynchronous
    /// `RATE_LOGIN`, `RATE_SEND`, `RATE_UPLOAD`, `RATE_SEARCH`: `<tokens per second>/<burst>`
    /// or `0` for off; the defaults are in `RateLimits.defaults` (and the README).
    public var rateLimits: RateLimits
    /// `LOG_LEVEL` (`info`): trace, debug, info, notice, warning, error or critical.
    public var logLevel: String
    /// `LOG_FORMAT` (`text`): `text` lines for people, or `json`, one object per line, for log
    /// shippers.
    public var logFormat: LogFormat

    /// `FCGI_INSTANCES` (1): how many FCGIApp processes `scripts/run` starts behind nginx.
    public var fcgiInstances: Int
    /// `RELAY_INSTANCES` (1): how many WSRelay processes; every writer notifies all of them.
    public var relayInstances: Int
    /// `INSTANCE` (1): which of its kind this process is, 1-based; it names the process's
    /// sockets and, for a relay, its share of presence.
    public var instance: Int
    /// `LOCAL_RELAYS` (`1-RELAY_INSTANCES`): the instance numbers of the relays on this host,
    /// `first-last` or one number. Several hosts on one PostgreSQL database number their relays
    /// across the deployment (`RELAY_INSTANCES` their total) and each host's sockets are its
    /// own: its FCGIApp probes (`/healthz`) and notifies only these.
    public var localRelays: ClosedRange<Int>

    public var runDirectory: String { dataDirectory + "/run" }
    public var uploadsDirectory: String { dataDirectory + "/uploads" }
    /// This FCGIApp's FastCGI socket; nginx's `fastcgi_pass` points here.
    public var fastCGISocketPath: String { socketPath("fcgi", instance: instance) }
    /// This FCGIApp's FastCGI socket for `POST /upload`, served by its own worker threads.
    public var fastCGIUploadSocketPath: String { socketPath("fcgi-upload", instance: instance) }
    /// This WSRelay's HTTP/WebSocket socket; nginx's `/ws` proxies here.
    public var relaySocketPath: String { socketPath("relay", instance: instance) }
    /// Every local relay's instance number and HTTP socket, lowest first (FCGIApp's health
    /// check probes each).
    public var relaySockets: [(instance: Int, path: String)] {
        localRelays.map { ($0, socketPath("relay", instance: $0)) }
    }
    /// This WSRelay's datagram socket for notifications from FCGIApp and the other relays.
    public var notifySocketPath: String { socketPath("notify", instance: instance) }
    /// The notification sockets a writer tells of its commits: every local relay's but its own.
    public func notifySocketPaths(exceptRelay ownInstance: Int? = nil) -> [String] {
        localRelays.filter { $0 != ownInstance }.map { socketPath("notify", instance: $0) }
    }

    /// A relay's own `INSTANCE` must be one of this host's (`LOCAL_RELAYS`): its host's FCGIApp
    /// neither probes nor notifies any other, and a second relay with a number another host
    /// uses would share that one's presence. (An FCGIApp's `INSTANCE` counts FCGIApps.)
    public func checkRelayInstance() throws(ConfigurationError) {
        guard localRelays.contains(instance) else {
            throw ConfigurationError("INSTANCE \(instance) is not one of this host's relays: LOCAL_RELAYS is "
                                     + "\(localRelays.lowerBound)-\(localRelays.upperBound)")
        }
    }

    /// Instance 1 keeps the single-instance names (`relay.sock`); instance n is `relay-n.sock`.
    private func socketPath(_ name: String, instance: Int) -> String {
        runDirectory + (instance == 1 ? "/\(name).sock" : "/\(name)-\(instance).sock")
    }

    /// Reads the process environment and `./.env`.
    public static func load() throws -> Configuration {
        var environment = DotEnv.load(path: FileManager.default.currentDirectoryPath + "/.env")
        environment.merge(ProcessInfo.processInfo.environment) { _, real in real }
        return try Configuration(environment: environment)
    }

    public init(environment: [String: String]) throws {
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
            return raw
        }
        func integer(_ name: String, default fallback: Int64, range: ClosedRange<Int64>) throws -> Int64 {
            guard let raw = value(name) else { return fallback }
            guard let number = Int64(raw), range.contains(number) else {
                throw ConfigurationError("\(name) must be an integer in \(range.lowerBound)...\(range.upperBound), got \(raw)")
            }
            return number
        }

        port = Int(try integer("PORT", default: 3000, range: 1...65535))
        dataDirectory = Self.absolute(value("DATA_DIR") ?? "./var")
        if let url = value("DATABASE_URL") {
            if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
                postgresURL = url
                databasePath = dataDirectory + "/messenger.db"
            } else if let path = Self.sqlitePath(fromURL: url) {
                databasePath = Self.absolute(path)
            } else {
                throw ConfigurationError("DATABASE_URL must look like sqlite:path/to/file.db or postgres://user@host/db, got \(Self.withoutPassword(url))")
            }
        } else {
            databasePath = dataDirectory + "/messenger.db"
        }
        tokenLifetime = try integer("TOKEN_TTL_SECONDS", default: TokenService.defaultLifetime, range: 60...31_536_000)
        let cores = Int64(ProcessInfo.processInfo.activeProcessorCount)
        fcgiWorkers = Int(try integer("FCGI_WORKERS", default: max(4, 2 * cores), range: 1...256))
        fcgiUploadWorkers = Int(try integer("FCGI_UPLOAD_WORKERS", default: 8, range: 1...256))
        uploadMaxBytes = try integer("UPLOAD_MAX_BYTES", default: 50 * 1024 * 1024, range: 1024...(4 << 30))
        migrationsDirectory = Self.absolute(value("MIGRATIONS_DIR") ?? "./migrations")
        if let raw = value("EVENT_RETENTION_DAYS") {
            guard let days = Double(raw), days > 0, days <= 36_500 else {
                throw ConfigurationError("EVENT_RETENTION_DAYS must be a number of days above 0, got \(raw)")
            }
            eventRetentionSeconds = max(1, Int64(days * 86_400))
        } else {
            eventRetentionSeconds = 30 * 86_400
        }
        eventPruneInterval = try integer("EVENT_PRUNE_INTERVAL_SECONDS", default: 600, range: 1...86_400)
        if let raw = value("DB_SYNCHRONOUS") {
            guard let mode = DatabaseSynchronous(rawValue: raw.lowercased()) else {
                throw ConfigurationError("DB_SYNCHRONOUS must be normal or full, got \(raw)")
            }
            databaseSynchronous = mode
        } else {
            databaseSynchronous = .normal
        }
        logLevel = value("LOG_LEVEL") ?? "info"
        if let raw = value("LOG_FORMAT") {
            guard let format = LogFormat(rawValue: raw.lowercased()) else {
                throw ConfigurationError("LOG_FORMAT must be text or json, got \(raw)")
            }
            logFormat = format
        } else {
            logFormat = .text
        }
        func limit(_ name: String, default fallback: RateLimit?) throws -> RateLimit? {
            guard let raw = value(name) else { return fallback }
            return try RateLimit.parse(raw, name: name)
        }
        let defaults = RateLimits.defaults
        rateLimits = RateLimits(login: try limit("RATE_LOGIN", default: defaults.login),
                                send: try limit("RATE_SEND", default: defaults.send),
                                upload: try limit("RATE_UPLOAD", default: defaults.upload),
                                search: try limit("RATE_SEARCH", default: defaults.search))
        socketGroup = value("SOCKET_GROUP")
        fcgiInstances = Int(try integer("FCGI_INSTANCES", default: 1, range: 1...Self.maxInstances))
        relayInstances = Int(try integer("RELAY_INSTANCES", default: 1, range: 1...Self.maxInstances))
        instance = Int(try integer("INSTANCE", default: 1, range: 1...Self.maxInstances))
        localRelays = try Self.relayRange(value("LOCAL_RELAYS"), relayInstances: relayInstances)
        if let secret = value("JWT_SECRET") {
            guard secret.utf8.count >= 16 else {
                throw ConfigurationError("JWT_SECRET must be at least 16 bytes long")
            }
            jwtSecret = Array(secret.utf8)
        } else {
            jwtSecret = try SecretFile.loadOrCreate(path: dataDirectory + "/jwt_secret")
        }
    }

    /// The most instances of either kind (`FCGI_INSTANCES`, `RELAY_INSTANCES`).
    public static let maxInstances: Int64 = 16

    /// `LOCAL_RELAYS`: `n` or `first-last`, within `1...relayInstances`; nil is all of them.
    static func relayRange(_ raw: String?, relayInstances: Int) throws -> ClosedRange<Int> {
        guard let raw else { return 1...relayInstances }
        let parts = raw.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        let bounds = parts.compactMap { Int($0) }
        guard bounds.count == parts.count, let first = bounds.first, let last = bounds.last,
              1 <= first, first <= last, last <= relayInstances
        else {
            throw ConfigurationError("LOCAL_RELAYS must be n or first-last within 1-\(relayInstances) (RELAY_INSTANCES), got \(raw)")
        }
        return first...last
    }

    /// `url` with its password (between the user's `:` and the last `@` before any `?`, so
    /// that a password with a bare `@` goes whole) replaced, for logs and errors.
    public static func withoutPassword(_ url: String) -> String {
        guard let scheme = url.range(of: "://") else { return url }
        let beforeQuery = url[scheme.upperBound...].prefix { $0 != "?" }
        guard let at = beforeQuery.lastIndex(of: "@"), let colon = url[scheme.upperBound..<at].firstIndex(of: ":")
        else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }

    /// `sqlite:path`, `sqlite://path` or `sqlite:///abs/path` → the file path.
    static func sqlitePath(fromURL url: String) -> String? {
        guard url.hasPrefix("sqlite:") else { return nil }
        var path = Substring(url.dropFirst("sqlite:".count))
        if path.hasPrefix("//") { path = path.dropFirst(2) }
        if let query = path.firstIndex(of: "?") { path = path[..<query] }
        return path.isEmpty ? nil : String(path)
    }

    static func absolute(_ path: String) -> String {
        let url = URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        return url.standardizedFileURL.path
    }
}

/// How durable a commit is before it is acknowledged (`DB_SYNCHRONOUS`), in SQLite's WAL
/// mode: `normal` syncs the WAL only at checkpoints, `full` at every commit.
public enum DatabaseSynchronous: String, Sendable {
    case normal
    case full
}

/// A configuration value that cannot be used; the message names the variable.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
