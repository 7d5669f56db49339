import Domain

/// What a handler answers; the FastCGI adapter writes it as a CGI response.
public struct Response {
    public var status: HTTPStatus
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: HTTPStatus = .ok, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON response; every API answer is one.
    public static func json(_ value: some JSONEncodable, status: HTTPStatus = .ok) -> Response {
        json(bytes: JSONWriter.encode(value), status: status)
    }

    public static func json(_ values: [some JSONEncodable], status: HTTPStatus = .ok) -> Response {
        json(bytes: JSONWriter.encode(values), status: status)
    }

    static func json(bytes: [UInt8], status: HTTPStatus) -> Response {
        Response(status: status,
                 headers: [("Content-Type", "application/json; charset=utf-8"), ("Cache-Control", "no-store")],
                 body: bytes)
    }

    /// 204: done, nothing to say.
    public static var noContent: Response { Response(status: .noContent, headers: [("Cache-Control", "no-store")]) }

    /// `{"error": message}`.
    public static func error(_ status: HTTPStatus, _ message: String) -> Response {
        var writer = JSONWriter(capacity: message.utf8.count + 16)
        writer.object { $0.field("error", message) }
        return json(bytes: writer.bytes, status: status)
    }
}

/// The statuses the API uses.
public struct HTTPStatus: Equatable, Sendable {
    public let code: Int
    public let reason: String

    public static let ok = HTTPStatus(code: 200, reason: "OK")
    public static let created = HTTPStatus(code: 201, reason: "Created")
    public static let noContent = HTTPStatus(code: 204, reason: "No Content")
    public static let badRequest = HTTPStatus(code: 400, reason: "Bad Request")
    public static let unauthorized = HTTPStatus(code: 401, reason: "Unauthorized")
    public static let forbidden = HTTPStatus(code: 403, reason: "Forbidden")
    public static let notFound = HTTPStatus(code: 404, reason: "Not Found")
    public static let methodNotAllowed = HTTPStatus(code: 405, reason: "Method Not Allowed")
    public static let contentTooLarge = HTTPStatus(code: 413, reason: "Content Too Large")
    public static let unsupportedMediaType = HTTPStatus(code: 415, reason: "Unsupported Media Type")
    public static let tooManyRequests = HTTPStatus(code: 429, reason: "Too Many Requests")
    public static let internalServerError = HTTPStatus(code: 500, reason: "Internal Server Error")
    public static let serviceUnavailable = HTTPStatus(code: 503, reason: "Service Unavailable")
    public static let insufficientStorage = HTTPStatus(code: 507, reason: "Insufficient Storage")
}
