import Domain
import Logging
import Storage

/// What every connection shares: who is connected, where sends go, how tokens are
/// checked, and the bounds.
struct RelayContext: Sendable {
    let registry: ConnectionRegistry
    let dispatcher: Dispatcher
    let tokens: TokenService
    /// Sessions revoked anywhere, followed from the database.
    let revokedSessions: RevokedSessions
    /// Each session's open sockets, to close when it is revoked.
    let sessions: SessionSockets
    let limits: RelayLimits
    let logger: Logger
    /// Seconds since 1970; a parameter so that tests can move time.
    let now: @Sendable () -> Int64
    /// Where sockets, deliveries and closes are counted.
    var metrics: RelayMetrics = .disabled
}
