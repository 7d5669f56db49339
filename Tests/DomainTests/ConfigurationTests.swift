import Domain
import Foundation
import Testing

/// A directory removed when the test ends.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.path + "/domain-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

@Suite struct ConfigurationTests {
    private let directory: TemporaryDirectory
    private let secret = "0123456789abcdef-secret"

    init() throws {
        directory = try TemporaryDirectory()
    }

    private func configuration(_ extra: [String: String]) throws -> Configuration {
        var environment = ["DATA_DIR": directory.path, "JWT_SECRET": secret]
        environment.merge(extra) { _, new in new }
        return try Configuration(environment: environment)
    }

    private var cwd: String { FileManager.default.currentDirectoryPath }

    @Test func defaults() throws {
        let config = try configuration([:])
        #expect(config.port == 3000)
        #expect(config.dataDirectory == directory.path)
        #expect(config.databasePath == directory.path + "/messenger.db")
        #expect(config.uploadsDirectory == directory.path + "/uploads")
        #expect(config.tokenLifetime == 86_400)
        #expect(config.uploadMaxBytes == 50 * 1024 * 1024)
        #expect(config.fcgiWorkers >= 2)
        #expect(config.jwtSecret == Array(secret.utf8))
        #expect(config.socketGroup == nil)
        #expect(config.fastCGISocketPath == directory.path + "/run/fcgi.sock")
        #expect(config.relaySocketPath == directory.path + "/run/relay.sock")
        #expect(config.notifySocketPaths() == [directory.path + "/run/notify.sock"])
        #expect(config.notifySocketPaths(exceptRelay: 1) == [])
        #expect((config.fcgiInstances, config.relayInstances, config.instance) == (1, 1, 1))
    }

    @Test func instancesPastTheFirstHaveNumberedSockets() throws {
        let config = try configuration(["FCGI_INSTANCES": "2", "RELAY_INSTANCES": "3", "INSTANCE": "2"])
        let run = directory.path + "/run"
        #expect(config.fastCGISocketPath == run + "/fcgi-2.sock")
        #expect(config.fastCGIUploadSocketPath == run + "/fcgi-upload-2.sock")
        #expect(config.relaySocketPath == run + "/relay-2.sock")
        #expect(config.notifySocketPath == run + "/notify-2.sock")
        #expect(config.localRelays == 1...3)
        #expect(config.relaySockets.map(\.instance) == [1, 2, 3])
        #expect(config.relaySockets.map(\.path) == [run + "/relay.sock", run + "/relay-2.sock", run + "/relay-3.sock"])
        #expect(config.notifySocketPaths(exceptRelay: 2) == [run + "/notify.sock", run + "/notify-3.sock"])
        #expect(throws: ConfigurationError.self) { try configuration(["RELAY_INSTANCES": "0"]) }
        #expect(throws: ConfigurationError.self) { try configuration(["INSTANCE": "17"]) }
    }

    @Test func localRelaysAreTheRelaysOfThisHostAmongTheDeployments() throws {
        let run = directory.path + "/run"
        let hostB = try configuration(["RELAY_INSTANCES": "4", "LOCAL_RELAYS": "3-4", "INSTANCE": "3"])
        #expect(hostB.relayInstances == 4)
        #expect(hostB.relaySockets.map(\.instance) == [3, 4])
        #expect(hostB.relaySockets.map(\.path) == [run + "/relay-3.sock", run + "/relay-4.sock"])
        #expect(hostB.notifySocketPaths() == [run + "/notify-3.sock", run + "/notify-4.sock"])
        #expect(hostB.notifySocketPaths(exceptRelay: 3) == [run + "/notify-4.sock"])
        try hostB.checkRelayInstance()
        #expect(throws: ConfigurationError.self) {
            try configuration(["RELAY_INSTANCES": "4", "LOCAL_RELAYS": "3-4", "INSTANCE": "1"]).checkRelayInstance()
        }
        try configuration(["RELAY_INSTANCES": "2", "INSTANCE": "2"]).checkRelayInstance()
        let one = try configuration(["RELAY_INSTANCES": "2", "LOCAL_RELAYS": "2"])
        #expect(one.localRelays == 2...2)
        for bad in ["0", "3", "2-1", "1-3", "1-", "-2", "a", "1-2-3"] {
            #expect(throws: ConfigurationError.self, "\(bad)") {
                try configuration(["RELAY_INSTANCES": "2", "LOCAL_RELAYS": bad])
            }
        }
    }

    @Test func relativeDataDirectoryBecomesAbsolute() throws {
        let config = try Configuration(environment: ["DATA_DIR": "some/rel", "JWT_SECRET": secret])
        #expect(config.dataDirectory.hasPrefix("/"))
        #expect(config.dataDirectory == URL(fileURLWithPath: cwd + "/some/rel").standardizedFileURL.path)
    }

    @Test(arguments: ["sqlite:x.db", "sqlite://x.db", "sqlite:x.db?mode=rwc"])
    func relativeDatabaseURLs(_ url: String) throws {
        let config = try configuration(["DATABASE_URL": url])
        #expect(config.databasePath == URL(fileURLWithPath: cwd + "/x.db").standardizedFileURL.path)
    }

    @Test func absoluteDatabaseURLs() throws {
        #expect(try configuration(["DATABASE_URL": "sqlite:///srv/db/m.db"]).databasePath == "/srv/db/m.db")
        #expect(try configuration(["DATABASE_URL": "sqlite:/srv/db/m.db"]).databasePath == "/srv/db/m.db")
    }

    @Test(arguments: ["mysql:x.db", "x.db", "sqlite:", "sqlite://", "SQLITE:x.db", "file:x.db", "postgres:/x"])
    func badDatabaseURLsAreRefused(_ url: String) {
        #expect(throws: ConfigurationError.self) { try configuration(["DATABASE_URL": url]) }
    }

    @Test func postgresDatabaseURLs() throws {
        #expect(try configuration([:]).postgresURL == nil)
        for url in ["postgres://app:s3cret@db.internal:5432/messenger", "postgresql://app@/messenger?host=/run/pg"] {
            let config = try configuration(["DATABASE_URL": url])
            #expect(config.postgresURL == url)
            #expect(config.databasePath == config.dataDirectory + "/messenger.db")
            #expect(!Configuration.withoutPassword(url).contains("s3cret"))
        }
    }

    @Test func passwordsStayOutOfWhatIsLogged() {
        #expect(Configuration.withoutPassword("postgres://app:s3cret@db:5432/m") == "postgres://app:***@db:5432/m")
        #expect(Configuration.withoutPassword("postgres://app@db/m") == "postgres://app@db/m")
        #expect(Configuration.withoutPassword("postgresql://app:p@ss:word@db/m") == "postgresql://app:***@db/m")
        #expect(Configuration.withoutPassword("sqlite:x.db") == "sqlite:x.db")
    }

    @Test func databaseSynchronous() throws {
        #expect(try configuration([:]).databaseSynchronous == .normal)
        #expect(try configuration(["DB_SYNCHRONOUS": "full"]).databaseSynchronous == .full)
        #expect(try configuration(["DB_SYNCHRONOUS": "FULL"]).databaseSynchronous == .full)
        #expect(try configuration(["DB_SYNCHRONOUS": "normal"]).databaseSynchronous == .normal)
        for bad in ["off", "extra", "2", "fullest"] {
            #expect(throws: ConfigurationError.self) { try configuration(["DB_SYNCHRONOUS": bad]) }
        }
    }

    @Test func shortJWTSecretIsRefused() {
        #expect(throws: ConfigurationError.self) { try configuration(["JWT_SECRET": "too-short"]) }
        #expect(throws: ConfigurationError.self) { try configuration(["JWT_SECRET": String(repeating: "x", count: 15)]) }
        #expect(throws: Never.self) { try configuration(["JWT_SECRET": String(repeating: "x", count: 16)]) }
    }

    @Test func withoutASecretOneIsGeneratedWithMode0600AndReused() throws {
        let dataDirectory = directory.path + "/fresh"  // does not exist yet
        let first = try Configuration(environment: ["DATA_DIR": dataDirectory])
        let secretPath = dataDirectory + "/jwt_secret"
        #expect(FileManager.default.fileExists(atPath: secretPath))
        #expect(first.jwtSecret.count >= 32)

        var info = stat()
        #expect(stat(secretPath, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)

        let stored = try #require(FileManager.default.contents(atPath: secretPath))
        #expect(String(decoding: stored, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            == String(decoding: first.jwtSecret, as: UTF8.self))

        let second = try Configuration(environment: ["DATA_DIR": dataDirectory])
        #expect(second.jwtSecret == first.jwtSecret)
        // No temporary files are left next to the secret.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dataDirectory) == ["jwt_secret"])
    }

    @Test func generatedSecretsDifferBetweenDataDirectories() throws {
        let one = try Configuration(environment: ["DATA_DIR": directory.path + "/one"])
        let two = try Configuration(environment: ["DATA_DIR": directory.path + "/two"])
        #expect(one.jwtSecret != two.jwtSecret)
    }

    @Test func anExplicitSecretWritesNoFile() throws {
        _ = try configuration([:])
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/jwt_secret"))
    }

    @Test func aSecretFileTooShortIsRefused() throws {
        try "short\n".write(toFile: directory.path + "/jwt_secret", atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try Configuration(environment: ["DATA_DIR": directory.path]) }
    }

    @Test func integerSettings() throws {
        let config = try configuration(["PORT": "8080", "TOKEN_TTL_SECONDS": "600", "UPLOAD_MAX_BYTES": "2048",
                                        "FCGI_WORKERS": "3", "FCGI_UPLOAD_WORKERS": "5", "SOCKET_GROUP": "www-data",
                                        "LOG_LEVEL": "debug"])
        #expect(config.port == 8080)
        #expect(config.tokenLifetime == 600)
        #expect(config.uploadMaxBytes == 2048)
        #expect(config.fcgiWorkers == 3)
        #expect(config.fcgiUploadWorkers == 5)
        #expect(config.socketGroup == "www-data")
        #expect(config.logLevel == "debug")
    }

    @Test(arguments: [("PORT", "abc"), ("PORT", "0"), ("PORT", "70000"), ("PORT", "-1"), ("TOKEN_TTL_SECONDS", "1"),
                      ("FCGI_WORKERS", "0"), ("FCGI_UPLOAD_WORKERS", "0"), ("FCGI_UPLOAD_WORKERS", "300"),
                      ("UPLOAD_MAX_BYTES", "10"), ("UPLOAD_MAX_BYTES", "1e6")])
    func badIntegersAreRefused(_ name: String, _ value: String) {
        #expect(throws: ConfigurationError.self) { try configuration([name: value]) }
    }

    @Test func blankValuesCountAsUnset() throws {
        let config = try configuration(["PORT": "  ", "DATABASE_URL": ""])
        #expect(config.port == 3000)
        #expect(config.databasePath == directory.path + "/messenger.db")
    }
}
