import NIOCore

/// The relay's bounds.
struct RelayLimits: Sendable {
    /// Largest frame (after reassembling fragments) a client may send.
    var maxFrameBytes = 64 * 1024
    /// Time to authenticate with IDENTIFY after opening without a token.
    var identifyTimeout: TimeAmount = .seconds(10)
    /// A connection that has not completed its HTTP upgrade (or been refused) by then is
    /// closed: a client trickling its request (slowloris) holds a socket no longer.
    var handshakeTimeout: TimeAmount = .seconds(10)
    /// A ping goes out this often; a peer silent for two intervals is closed.
    var pingInterval: TimeAmount = .seconds(30)
    /// Bytes a connection may have queued but unsent before it counts as too slow.
    var maxQueuedBytes = 4 * 1024 * 1024
    /// Most bytes of missed events replayed to a resuming socket (about 15,000 short
    /// messages), safely under `maxQueuedBytes`; past it the socket gets RESYNC instead and
    /// refetches over REST.
    var maxReplayBytes = 3 * 1024 * 1024
    /// Time the peer has to answer our close frame before the socket is dropped.
    var closeTimeout: TimeAmount = .seconds(5)
    /// Sends waiting for the storage thread before new ones are refused as busy.
    var maxPendingSends = 100_000
    /// Sends committed together in one transaction at most.
    var maxBatch = 2_000
}
