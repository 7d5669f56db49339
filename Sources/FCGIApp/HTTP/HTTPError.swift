import Domain
import Storage

/// An error with a status and a message the client may see.
///
/// Every error a handler throws becomes one of these through `init(_ error:)`; anything not
/// recognised is a 500 whose text stays in the log, never in the response.
public struct HTTPError: Error, Equatable, CustomStringConvertible {
    public let status: HTTPStatus
    public let message: String

    public init(_ status: HTTPStatus, _ message: String) {
        self.status = status
        self.message = message
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
            }
            return (HTTPError(status, error.message), false)
        case let error as TokenError:
            return (HTTPError(.unauthorized, error.reason), false)
        case let error as StorageError where error.isBusy:
            return (HTTPError(.serviceUnavailable, "the database is busy; retry shortly"), true)
        case let error as StorageError where error.isDiskFull:
            return (HTTPError(.serviceUnavailable, "the server's disk is full; retry later"), true)
        default:
            return (HTTPError(.internalServerError, "internal server error"), true)
        }
    }
}
