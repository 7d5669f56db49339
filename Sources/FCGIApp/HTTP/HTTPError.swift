import Domain
import Storage

/// An error with a status and a message the client may see.
///
/// Every error a handler throws becomes one of these through `init(_ error:)`; anything not
/// recognised is a 500 whose text stays in the log, never in the response.
public struct HTTPError: Error, Equatable, CustomStringConvertible {
    public let status: HTTPStatus
    public let message: String
    /// Seconds for `Retry-After`: on 429, and on 503 when the password slots are full.
    public let retryAfter: Int?

    public init(_ status: HTTPStatus, _ message: String, retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.retryAfter = retryAfter
    }

    /// 429 with `Retry-After`.
    static func rateLimited(_ limited: RateLimited) -> HTTPError {
        HTTPError(.tooManyRequests, limited.message, retryAfter: limited.retryAfterSeconds)
    }

    /// The response: `{"error": message}`, with `Retry-After` when set.
    var response: Response {
        var response = Response.error(status, message)
        if let retryAfter { response.headers.append(("Retry-After", String(retryAfter))) }
        return response
    }

    public var description: String { "\(status.code) \(message)" }

    /// The client-facing form of `error`, and whether it is a server fault worth logging.
    static func from(_ error: any Error) -> (error: HTTPError, isServerFault: Bool) {
        switch error {
        case let error as HTTPError:
            return (error, false)
        case let error as ValidationError:
            return (HTTPError(.badRequest, error.message), false)
        case let error as MessengerError:
            let status: HTTPStatus = switch error.kind {
            case .notFound: .notFound
            case .forbidden: .forbidden
            case .invalid: .badRequest
            case .rateLimited: .tooManyRequests
            }
            let retryAfter = error.retryAfter.map { RateLimited(retryAfter: $0, what: "").retryAfterSeconds }
            return (HTTPError(status, error.message, retryAfter: retryAfter), false)
        case let error as RateLimited:
            return (.rateLimited(error), false)
        case let error as TokenError:
            return (HTTPError(.unauthorized, error.reason), false)
        case let error as StorageError where error.isBusy:
            return (HTTPError(.serviceUnavailable, "the database is busy; retry shortly"), true)
        case let error as StorageError where error.isDiskFull:
            return (HTTPError(.serviceUnavailable, "the server's disk is full; retry later"), true)
        case let error as StorageError where error.isUnavailable:
            return (HTTPError(.serviceUnavailable, "the database is unavailable; retry shortly"), true)
        default:
            return (HTTPError(.internalServerError, "internal server error"), true)
        }
    }
}
