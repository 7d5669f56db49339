import Domain
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Storage

/// Binds the relay's two Unix sockets — HTTP/WebSocket for nginx's `/ws`, datagrams for
/// FCGIApp's and the other relays' notifications — and owns the shutdown order.
final class RelayServer: Sendable {
    private let configuration: Configuration
    private let group: MultiThreadedEventLoopGroup
    private let context: RelayContext
    private let serverChannel: Channel
    private let notificationChannel: Channel
    /// SQLite's background checkpoints; nil on PostgreSQL.
    private let checkpointer: Checkpointer?
    /// On PostgreSQL: LISTEN for commits of every writer on every host (on SQLite the
    /// writers' datagrams to `notifySocketPath` tell).
    private let listener: PostgresListener?
    private let operations: RelayOperations
    private let revokedSessions: RevokedSessions
    private let peers: RelayPeers

    init(configuration: Configuration, limits: RelayLimits, logger: Logger, metrics export: MetricsExport) throws {
        self.configuration = configuration
        try FileManager.default.createDirectory(atPath: configuration.runDirectory, withIntermediateDirectories: true)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        self.group = group
        let registry = ConnectionRegistry()
        let metrics = RelayMetrics(factory: export.factory)
        // Checkpoints stay out of the storage thread until the WAL reaches 40 MB: at SQLite's
        // 1,000 pages its commits crossed the threshold every 30 ms under the WebSocket ingest
        // load, stopping delivery while they copied and synced (20.7k → 18.5k msgs/s).
        let location = DatabaseLocation(configuration)
        let store: Store
        switch location {
        case .sqlite(let path):
            let checkpointer = Checkpointer(path: path, interval: 0.1, synchronous: configuration.databaseSynchronous)
            self.checkpointer = checkpointer
            store = try Store.writer(path: path, autocheckpointPages: 10_000, checkpointer: checkpointer,
                                     synchronous: configuration.databaseSynchronous, metrics: metrics.database)
        case .postgres:
            checkpointer = nil
            store = try location.openStore()
        }
        let retention = EventRetention(maxAge: configuration.eventRetentionSeconds,
                                       interval: TimeInterval(configuration.eventPruneInterval))
        let peers = try RelayPeers(configuration: configuration) { error in
            logger.warning("telling the other relays failed", metadata: ["error": "\(error)"])
        }
        self.peers = peers
        let dispatcher = try Dispatcher(store: store, registry: registry, limits: limits, logger: logger,
                                        retention: retention, metrics: metrics, sendLimit: configuration.rateLimits.send,
                                        peers: peers)
        if case .postgres(let url) = location {
            let channels = [PostgresListener.eventsChannel] + (peers.count > 1 ? [RelayPeers.channel] : [])
            listener = PostgresListener(url: url, channels: channels,
                                        onNotification: { channel, payload in
                                            guard channel == RelayPeers.channel else { return dispatcher.wake() }
                                            if let notification = peers.received(payload) {
                                                dispatcher.receive(notification)
                                            }
                                        },
                                        onError: { error in
                                            logger.warning("LISTEN connection lost; reconnecting",
                                                           metadata: ["error": "\(error)"])
                                        })
        } else {
            listener = nil
        }
        let revokedSessions = try RevokedSessions(location: location)
        self.revokedSessions = revokedSessions
        let sessions = SessionSockets()
        let now: @Sendable () -> Int64 = { Int64(time(nil)) }
        let context = RelayContext(registry: registry, dispatcher: dispatcher,
                                   tokens: TokenService(secret: configuration.jwtSecret, lifetime: configuration.tokenLifetime),
                                   revokedSessions: revokedSessions, sessions: sessions,
                                   limits: limits, logger: logger, now: now, metrics: metrics)
        self.context = context
        let operations = RelayOperations(export: export, metrics: metrics, dispatcher: dispatcher, registry: registry,
                                         database: location, logger: logger)
        self.operations = operations
        let authenticator = UpgradeAuthenticator(tokens: context.tokens, revokedSessions: revokedSessions, now: now)

        serverChannel = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .childChannelOption(.writeBufferWaterMark,
                                value: .init(low: limits.maxQueuedBytes / 4, high: limits.maxQueuedBytes))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configure(channel, context: context, authenticator: authenticator, operations: operations,
                                       peers: peers)
                }
            }
            .bind(unixDomainSocketPath: configuration.relaySocketPath, cleanupExistingSocketFile: true)
            .wait()
        try SocketPermissions.apply(path: configuration.relaySocketPath, group: configuration.socketGroup)

        unlink(configuration.notifySocketPath)
        notificationChannel = try DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_rcvbuf), value: 1 << 20)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NotificationListener(dispatcher: dispatcher))
                }
            }
            .bind(unixDomainSocketPath: configuration.notifySocketPath)
            .wait()
        try SocketPermissions.apply(path: configuration.notifySocketPath, group: configuration.socketGroup)
        peers.start()
        dispatcher.start()
        revokedSessions.start(onRevoked: { sessions.closeRevoked($0) }) { error in
            logger.error("reading session revocations failed", metadata: ["error": "\(error)"])
        }
        checkpointer?.start { error in logger.error("checkpoint failed", metadata: ["error": "\(error)"]) }
        listener?.start()
        logger.info("relay listening", metadata: ["socket": "\(configuration.relaySocketPath)",
                                                  "notifications": "\(configuration.notifySocketPath)"])
    }

    private static func configure(_ channel: Channel, context: RelayContext, authenticator: UpgradeAuthenticator,
                                  operations: RelayOperations, peers: RelayPeers) throws {
        let limits = context.limits
        // Read when the upgrade is accepted, before the 101 goes out; see `Dispatcher.join`.
        let acceptedAt = NIOLoopBoundBox<Int64>(0, eventLoop: channel.eventLoop)
        let upgraded = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
        let handshakeTimer = channel.eventLoop.scheduleTask(in: limits.handshakeTimeout) {
            if !upgraded.value { channel.close(promise: nil) }
        }
        channel.closeFuture.whenComplete { _ in handshakeTimer.cancel() }
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: limits.maxFrameBytes,
            automaticErrorHandling: false,  // WebSocketHandler.errorCaught answers
            shouldUpgrade: { channel, head in
                switch authenticator.decide(head) {
                case .upgrade:
                    acceptedAt.value = context.dispatcher.deliveryCursor
                    // Which relay took the socket, when there are several: for operators
                    // reading a client's trace (and the multi-relay tests).
                    let headers: HTTPHeaders = peers.count > 1 ? ["X-Relay-Instance": "\(peers.instance)"] : [:]
                    return channel.eventLoop.makeSucceededFuture(headers)
                case .refuse:
                    return channel.eventLoop.makeSucceededFuture(nil)
                }
            },
            upgradePipelineHandler: { channel, head in
                channel.eventLoop.makeCompletedFuture {
                    guard case .upgrade(let identity, let stream) = authenticator.decide(head) else {
                        throw ChannelError.inappropriateOperationForState
                    }
                    // The HTTP answerer sits before the frame decoder the upgrader appended;
                    // from here on only WebSocket frames flow.
                    _ = channel.pipeline.syncOperations.removeHandler(name: HTTPRefusalHandler.name)
                    upgraded.value = true
                    handshakeTimer.cancel()
                    try channel.pipeline.syncOperations.addHandlers([
                        FrameGuard(),
                        NIOWebSocketFrameAggregator(minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 64,
                                                    maxAccumulatedFrameSize: limits.maxFrameBytes),
                        WebSocketHandler(relay: context, identity: identity, stream: stream, acceptedAt: acceptedAt.value,
                                         requestID: RelayOperations.requestID(head.headers)),
                    ])
                }
            })
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
        try channel.pipeline.syncOperations.addHandler(HTTPRefusalHandler(authenticator: authenticator,
                                                                          operations: operations, logger: context.logger),
                                                       name: HTTPRefusalHandler.name)
    }

    /// SIGTERM: stop accepting, commit and answer what was received, close every socket
    /// with 1001, and stop the event loops.
    func shutdown() {
        try? serverChannel.close().wait()
        revokedSessions.stop()
        listener?.stop()
        context.dispatcher.stop()
        peers.stop()
        let connections = context.registry.all()
        for handle in connections { handle.close(.goingAway) }
        let deadline = Date(timeIntervalSinceNow: 2)
        while context.registry.count > 0 && Date() < deadline { usleep(20_000) }
        try? notificationChannel.close().wait()
        operations.shutdown()
        try? group.syncShutdownGracefully()
        checkpointer?.stop()
        unlink(configuration.relaySocketPath)
        unlink(configuration.notifySocketPath)
    }
}
