import Domain
import Foundation
import Logging
import Storage

// FCGIApp: `FCGIApp migrate` applies migrations and exits; `FCGIApp` serves the REST API
// over FastCGI until SIGTERM.

let arguments = Array(CommandLine.arguments.dropFirst())
let (configuration, logger) = ProcessStart.configure(program: "FCGIApp")

do {
    switch arguments.first {
    case "migrate" where configuration.postgresURL != nil:
        let database = try PostgresConnection(url: configuration.postgresURL!)
        let applied = try Migrator(directory: Migrator.directory(for: PostgresConnection.self,
                                                                 under: configuration.migrationsDirectory))
            .migrate(database)
        logger.info("database is at schema version \(Migrator.schemaVersion)",
                    metadata: ["applied": "\(applied)", "database": "\(Configuration.withoutPassword(configuration.postgresURL!))"])
    case "migrate":
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        let connection = try Connection(path: configuration.databasePath, synchronous: configuration.databaseSynchronous)
        // Messages are private: only our own user reads the database (SQLite gives the WAL and
        // shared-memory files the database file's mode).
        chmod(configuration.databasePath, 0o600)
        let applied = try Migrator(directory: Migrator.sqliteDirectory(under: configuration.migrationsDirectory))
            .migrate(connection)
        logger.info("database is at schema version \(Migrator.schemaVersion)",
                    metadata: ["applied": "\(applied)", "database": "\(configuration.databasePath)"])
    case nil:
        HeapTrimmer.start()
        signal(SIGPIPE, SIG_IGN)
        try FileManager.default.createDirectory(atPath: configuration.uploadsDirectory, withIntermediateDirectories: true)
        // Refuses a schema this build does not know before listening.
        let store = try DatabaseLocation(configuration).openStore(synchronous: configuration.databaseSynchronous)
        try UploadSweep.run(directory: configuration.uploadsDirectory, store: store, logger: logger,
                            minimumAge: UploadSweep.minimumAge(configuration))
        let server = try FastCGIServer(configuration: configuration, router: API.router(), logger: logger,
                                       metrics: MetricsExport())
        try server.run()
    default:
        FileHandle.standardError.write(Data("usage: FCGIApp [migrate]\n".utf8))
        exit(64)  // EX_USAGE
    }
} catch {
    logger.critical("\(error)")
    exit(1)
}
