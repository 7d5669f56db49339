import Domain
@testable import FCGIApp
import Foundation
import Logging
import Storage
import Testing

/// The REST API in-process: a temp `DATA_DIR` with a migrated database, the real router and
/// handlers, and the same error mapping as the FastCGI loop. No libfcgi, no sockets.
final class TestApp {
    static let migrationsDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("migrations").path
    static let secret = "fcgi-app-tests-secret-0123456789"

    /// The clock handlers see; tests move it.
    final class Clock {
        var now: Int64 = 1_771_502_400  // 2026-02-19T12:00:00Z
    }

    let directory: String
    let configuration: Configuration
    let store: Store
    let tokens: TokenService
    let clock = Clock()
    let context: Context
    let revokedSessions: RevokedSessions
    let router = API.router()

    /// One hasher for every test: its dummy hash costs an Argon2id run.
    static let hasher = Result { try PasswordHasher() }
    static func passwords() throws -> PasswordSlots {
        PasswordSlots(hasher: try hasher.get(), maxRunning: 2, maxAdmitted: 2)
    }

    init(environment extra: [String: String] = [:],
         busyTimeoutMilliseconds: Int32 = Connection.defaultBusyTimeoutMilliseconds) throws {
        directory = FileManager.default.temporaryDirectory.path + "/fcgiapp-tests-" + UUID().uuidString
        // Rate limits off unless a test turns one on.
        var environment = ["DATA_DIR": directory, "JWT_SECRET": Self.secret, "MIGRATIONS_DIR": Self.migrationsDirectory,
                           "RATE_LOGIN": "0", "RATE_SEND": "0", "RATE_UPLOAD": "0", "RATE_SEARCH": "0"]
        environment.merge(extra) { _, new in new }
        configuration = try Configuration(environment: environment)
        try FileManager.default.createDirectory(atPath: configuration.uploadsDirectory, withIntermediateDirectories: true)
        try Migrator(directory: Migrator.sqliteDirectory(under: configuration.migrationsDirectory)).migrate(Connection(path: configuration.databasePath))
        let connection = try Connection(path: configuration.databasePath, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        try Migrator.checkSchema(connection)
        store = Store(connection: connection)
        tokens = TokenService(secret: configuration.jwtSecret, lifetime: configuration.tokenLifetime)
        let clock = self.clock
        // As in FCGIApp: reads on the worker's own connection, writes on one shared connection.
        let writer = SerializedStore(Store(connection: try Connection(path: configuration.databasePath,
                                                                      busyTimeoutMilliseconds: busyTimeoutMilliseconds)),
                                     sendLimit: configuration.rateLimits.send)
        revokedSessions = try RevokedSessions(path: configuration.databasePath)
        context = Context(store: store, writer: writer, tokens: tokens, revokedSessions: revokedSessions,
                          passwords: try Self.passwords(), notifier: nil, configuration: configuration,
                          logger: Logger(label: "test"), now: { clock.now })
    }

    deinit {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Handles one request as `FastCGIServer` does: parse, route, handle, map errors.
    func handle(_ method: String, _ uri: String, headers: [String: String] = [:], body: any BodyReader = BytesBody([])) -> TestResponse {
        let response: Response
        do {
            var request = try Request(method: method, uri: uri, headers: headers, body: body)
            let handler = try router.resolve(&request)
            response = try handler(&request, context)
        } catch {
            response = HTTPError.from(error).error.response
        }
        return TestResponse(response)
    }

    /// A JSON request, authenticated with `token` if given.
    func request(_ method: String, _ uri: String, token: String? = nil, json: String? = nil,
                 headers extra: [String: String] = [:]) -> TestResponse {
        var headers = extra
        if let token { headers["Authorization"] = "Bearer " + token }
        if json != nil { headers["Content-Type"] = "application/json" }
        return handle(method, uri, headers: headers, body: BytesBody(Array((json ?? "").utf8)))
    }

    /// Logs `username` in through the API; returns the token and the user's id.
    func login(_ username: String) throws -> (token: String, id: Int64) {
        let response = request("POST", "/login", json: #"{"username":"\#(username)"}"#)
        try #require(response.status == 200, "login \(username): \(response.text)")
        let token = try response.fields().string("token")
        return (token, try tokens.verify(token, now: clock.now).userID)
    }

    /// Files in the uploads directory, hidden ones included.
    func uploadsDirectoryContents() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: configuration.uploadsDirectory).sorted()
    }

    func count(_ table: String) throws -> Int64 {
        try store.database.statement("SELECT count(*) FROM \(table)").first { $0.int(0) } ?? -1
    }
}

/// A response with helpers to read its JSON body.
struct TestResponse {
    let status: Int
    let headers: [(String, String)]
    let body: [UInt8]

    init(_ response: Response) {
        status = response.status.code
        headers = response.headers
        body = response.body
    }

    var text: String { String(decoding: body, as: UTF8.self) }

    func json() throws -> JSON { try JSONParser.parse(body) }

    func fields() throws -> JSONFields { try JSONFields(parsing: body) }

    /// The `error` of an error body; records an issue if the body is anything else.
    var error: String? {
        guard let fields = try? fields(), Set(fields.members.keys) == ["error"] else {
            Issue.record("not an error body: \(text)")
            return nil
        }
        return try? fields.string("error")
    }

    var contentType: String? { headers.first { $0.0.lowercased() == "content-type" }?.1 }
}

extension JSON {
    /// The keys of an object, for exact field-set checks.
    var keys: Set<String> {
        if case .object(let members) = self { return Set(members.keys) }
        return []
    }

    var array: [JSON] {
        if case .array(let values) = self { return values }
        return []
    }
}

let userKeys: Set<String> = ["id", "username", "display_name", "bio", "image_id"]
let chatKeys: Set<String> = ["id", "name", "chat_type", "created_at", "participants"]
let messageKeys: Set<String> = ["id", "chat_id", "sender_id", "content", "timestamp", "files"]
let fileKeys: Set<String> = ["id", "type", "url", "filename", "mime_type", "size_bytes", "created_at"]
let legacyMessageKeys: Set<String> = ["id", "sender_id", "receiver_id", "content", "timestamp"]
