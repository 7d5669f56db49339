/// A request the messenger refuses for a reason the client may know: something does not
/// exist, is not theirs, or breaks a rule. `message` is safe to show.
///
/// FCGIApp maps `kind` to 404, 403, 400 or 429; WSRelay sends an `ERROR` frame either way.
public struct MessengerError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case notFound
        case forbidden
        case invalid
        /// Over a rate limit; `MessengerError.retryAfter` says for how long.
        case rateLimited
    }

    public let kind: Kind
    public let message: String
    /// Seconds until a retry can succeed; set for `.rateLimited`.
    public let retryAfter: Double?

    public var description: String { message }

    public static func notFound(_ message: String) -> MessengerError { MessengerError(kind: .notFound, message: message) }
    public static func forbidden(_ message: String) -> MessengerError { MessengerError(kind: .forbidden, message: message) }
    public static func invalid(_ message: String) -> MessengerError { MessengerError(kind: .invalid, message: message) }

    public static func rateLimited(_ limited: RateLimited) -> MessengerError {
        MessengerError(kind: .rateLimited, message: limited.message, retryAfter: limited.retryAfter)
    }

    public init(kind: Kind, message: String, retryAfter: Double? = nil) {
        self.kind = kind
        self.message = message
        self.retryAfter = retryAfter
    }

    public init(_ error: ValidationError) {
        self.init(kind: .invalid, message: error.message)
    }
}
