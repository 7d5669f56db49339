import NIOWebSocket

/// Every close code the relay sends, in one table (also in the README).
///
/// Like centrifuge's `disconnect.go`, the range tells a client what to do:
/// 4000–4499, reconnect (and catch up with `after_id`); 4500–4999, reconnecting with the
/// same credentials will fail again.
enum CloseCode: CaseIterable {
    /// 1000: the client asked to close.
    case normal
    /// 1001: the relay is shutting down; reconnect.
    case goingAway
    /// 1002: the peer broke the WebSocket protocol: a frame header NIO's decoder refuses, a
    /// reserved bit or opcode, an unmasked frame (`FrameGuard`), fragments out of order, a
    /// malformed close frame.
    case protocolError
    /// 1007: a text frame (or a close frame's reason) that is not UTF-8.
    case invalidPayload
    /// 1008: more pings and pongs than `FrameGuard.maxControlFramesPerSecond` in a second.
    case policyViolation
    /// 1009: a frame larger than `RelayLimits.maxFrameBytes` (sent by NIO's decoder).
    case messageTooBig
    /// 1011: an internal error.
    case internalError
    /// 4001: no valid IDENTIFY within `RelayLimits.identifyTimeout`.
    case identifyTimeout
    /// 4008: the client read too slowly and its outbound queue filled; reconnect and catch up.
    case tooSlow
    /// 4009: no frame or pong within two ping intervals.
    case pingTimeout
    /// 4501: the token in IDENTIFY is invalid or expired; log in again.
    case invalidToken
    /// 4502: the socket's session was revoked (a logout, or a password change on another
    /// device); log in again.
    case sessionRevoked

    var code: WebSocketErrorCode {
        switch self {
        case .normal: .normalClosure
        case .goingAway: .goingAway
        case .protocolError: .protocolError
        case .invalidPayload: .dataInconsistentWithMessage
        case .policyViolation: .policyViolation
        case .messageTooBig: .messageTooLarge
        case .internalError: .unexpectedServerError
        case .identifyTimeout: .init(codeNumber: 4001)
        case .tooSlow: .init(codeNumber: 4008)
        case .pingTimeout: .init(codeNumber: 4009)
        case .invalidToken: .init(codeNumber: 4501)
        case .sessionRevoked: .init(codeNumber: 4502)
        }
    }

    var reason: String {
        switch self {
        case .normal: "bye"
        case .goingAway: "server shutting down"
        case .protocolError: "protocol error"
        case .invalidPayload: "text is not UTF-8"
        case .policyViolation: "too many pings"
        case .messageTooBig: "frame too large"
        case .internalError: "internal error"
        case .identifyTimeout: "identify timeout"
        case .tooSlow: "too slow: reconnect and catch up with after_id"
        case .pingTimeout: "ping timeout"
        case .invalidToken: "invalid token"
        case .sessionRevoked: "session revoked; log in again"
        }
    }
}
