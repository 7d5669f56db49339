/// A request the messenger refuses for a reason the client may know: something does not
/// exist, is not theirs, or breaks a rule. `message` is safe to show.
///
/// FCGIApp maps `kind` to 404, 403 or 400; WSRelay sends an `ERROR` frame either way.
public struct MessengerError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case notFound
        case forbidden
        case invalid
    }

    public let kind: Kind
    public let message: String

    public var description: String { message }

    public static func notFound(_ message: String) -> MessengerError { MessengerError(kind: .notFound, message: message) }
    public static func forbidden(_ message: String) -> MessengerError { MessengerError(kind: .forbidden, message: message) }
    public static func invalid(_ message: String) -> MessengerError { MessengerError(kind: .invalid, message: message) }

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    public init(_ error: ValidationError) {
        self.init(kind: .invalid, message: error.message)
    }
}
