import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// `LoadGen ws-floor`: the cheapest relay that still answers like WSRelay, for the floor
/// baselines of the WS ingest and WS latency rows.
///
/// It listens on a Unix socket where nginx's `/ws` can point, upgrades every request without
/// looking at the token, and answers each `{chat_id, content, nonce}` the way the relay does —
/// the message echoed with an ACK to the sender, the message to everyone else who has sent to
/// that chat (with `broadcast`: to every other open socket, one group of all of them) — but
/// stores nothing and assigns ids from a counter. What it measures is what nginx, the sockets
/// and the generator cost on this machine with no relay work at all.
enum FloorServer {
    static func run(socketPath: String, threads: Int, broadcast: Bool) throws -> Never {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let chats = FloorChats(broadcast: broadcast)
        unlink(socketPath)
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .childChannelInitializer { channel in
                let upgrader = NIOWebSocketServerUpgrader(
                    maxFrameSize: 64 * 1024,
                    shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
                    upgradePipelineHandler: { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(FloorHandler(chats: chats))
                        }
                    })
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                }
            }
            .bind(unixDomainSocketPath: socketPath)
            .wait()
        // nginx's workers run as another user; this socket lives in the bench's private directory.
        chmod(socketPath, 0o666)
        say("ws-floor: listening on \(socketPath) with \(threads) event loop(s)" + (broadcast ? ", broadcasting" : ""))
        let stop = DispatchSemaphore(value: 0)
        let sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { stop.signal() }
            source.resume()
            return source
        }
        stop.wait()
        sources.forEach { $0.cancel() }
        try? channel.close().wait()
        unlink(socketPath)
        exit(0)
    }
}

/// Which connections have sent to which chat (or, broadcasting, which are open), and the
/// next message id.
final class FloorChats: Sendable {
    private struct State {
        var nextID: Int64 = 1
        var members: [Int64: [ObjectIdentifier: FloorPeer]] = [:]
        var open: [ObjectIdentifier: FloorPeer] = [:]
    }

    private let state = NIOLockedValueBox(State())
    let broadcast: Bool

    init(broadcast: Bool) {
        self.broadcast = broadcast
    }

    /// Broadcasting: `peer` is one of the group from now on.
    func opened(_ peer: FloorPeer) {
        guard broadcast else { return }
        state.withLockedValue { $0.open[ObjectIdentifier(peer)] = peer }
    }

    /// Registers `channel` in `chatID`; returns a fresh id and the chat's other connections.
    func post(from channel: FloorPeer, to chatID: Int64) -> (id: Int64, others: [FloorPeer]) {
        state.withLockedValue { state in
            let id = state.nextID
            state.nextID += 1
            let key = ObjectIdentifier(channel)
            if broadcast {
                return (id, state.open.compactMap { $0.key == key ? nil : $0.value })
            }
            if state.members[chatID]?[key] == nil { state.members[chatID, default: [:]][key] = channel }
            let others = state.members[chatID]!.compactMap { $0.key == key ? nil : $0.value }
            return (id, others)
        }
    }

    func remove(_ channel: FloorPeer, from chatIDs: Set<Int64>) {
        state.withLockedValue { state in
            state.open[ObjectIdentifier(channel)] = nil
            for chatID in chatIDs { state.members[chatID]?[ObjectIdentifier(channel)] = nil }
        }
    }
}
