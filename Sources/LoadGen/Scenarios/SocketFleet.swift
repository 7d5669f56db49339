import Dispatch
import NIOConcurrencyHelpers
import NIOCore

/// Many WebSockets opened with a bounded number of handshakes in flight.
enum SocketFleet {
    struct Opened {
        /// One entry per requested socket; nil where the handshake failed.
        let sockets: [NIOLoopBound<WebSocketClient>?]
        let failures: Int
        let firstError: String?
        let seconds: Double

        var open: [NIOLoopBound<WebSocketClient>] { sockets.compactMap { $0 } }
    }

    /// Socket `i` runs on `loops[i % loops.count]` and authenticates with `token(i)`.
    /// Blocks the calling thread until every handshake has succeeded or failed (each is
    /// bounded by the connect and handshake timeouts).
    static func open(
        count: Int, endpoint: Endpoint, loops: [EventLoop], concurrency: Int,
        token: @escaping @Sendable (Int) -> String,
        makeBehavior: @escaping @Sendable (Int, EventLoop) -> any SocketBehavior
    ) -> Opened {
        let started = monotonicNanos()
        let slots = DispatchSemaphore(value: concurrency)
        let finished = DispatchGroup()
        let results = NIOLockedValueBox(
            (sockets: [NIOLoopBound<WebSocketClient>?](repeating: nil, count: count), failures: 0, firstError: String?.none))
        for index in 0..<count {
            slots.wait()
            finished.enter()
            let loop = loops[index % loops.count]
            WebSocketDialer.connect(endpoint: endpoint, loop: loop, index: index, token: token(index)) {
                makeBehavior(index, loop)
            }.whenComplete { result in
                results.withLockedValue { state in
                    switch result {
                    case .success(let socket):
                        state.sockets[index] = socket
                    case .failure(let error):
                        state.failures += 1
                        if state.firstError == nil { state.firstError = "\(error)" }
                    }
                }
                slots.signal()
                finished.leave()
            }
            if (index + 1) % 2000 == 0 { say("  \(index + 1)/\(count) handshakes started") }
        }
        finished.wait()
        let seconds = Double(monotonicNanos() - started) / 1e9
        return results.withLockedValue {
            Opened(sockets: $0.sockets, failures: $0.failures, firstError: $0.firstError, seconds: seconds)
        }
    }

    /// What a run's sockets show at its end, read before they are closed.
    struct Ending {
        /// Sockets still open: one that closed under the load is an error.
        let stillOpen: Int
        /// See `protocolErrors(_:)`.
        let protocolErrors: Int
    }

    /// Counts what the sockets show at the end of a run, then closes them.
    static func end(_ sockets: [NIOLoopBound<WebSocketClient>]) -> Ending {
        let ending = Ending(stillOpen: countOpen(sockets), protocolErrors: protocolErrors(sockets))
        close(sockets)
        return ending
    }

    /// Closing handshake on every socket, then waits (at most `timeout`) until all are closed.
    static func close(_ sockets: [NIOLoopBound<WebSocketClient>], timeout: Double = 5) {
        guard !sockets.isEmpty else { return }
        let byLoop = byLoop(sockets)
        let closing = byLoop.map { group in
            group[0].eventLoop.submit { for socket in group { socket.value.close() } }
        }
        _ = try? EventLoopFuture.andAllComplete(closing, on: closing[0].eventLoop).wait()
        let deadline = monotonicNanos() + timeout.nanoseconds
        while monotonicNanos() < deadline {
            if countOpen(byLoop) == 0 { return }
            sleepSeconds(0.1)
        }
    }

    /// Sockets still open, counted on their own loops.
    static func countOpen(_ sockets: [NIOLoopBound<WebSocketClient>]) -> Int {
        countOpen(byLoop(sockets))
    }

    /// Frames the server sent that no client expects (binary, fragmented, undecodable),
    /// summed on the sockets' own loops.
    static func protocolErrors(_ sockets: [NIOLoopBound<WebSocketClient>]) -> Int {
        sum(byLoop(sockets)) { $0.protocolErrors }
    }

    private static func countOpen(_ byLoop: [[NIOLoopBound<WebSocketClient>]]) -> Int {
        sum(byLoop) { $0.isOpen ? 1 : 0 }
    }

    private static func byLoop(_ sockets: [NIOLoopBound<WebSocketClient>]) -> [[NIOLoopBound<WebSocketClient>]] {
        Array(Dictionary(grouping: sockets) { ObjectIdentifier($0.eventLoop) }.values)
    }

    private static func sum(_ byLoop: [[NIOLoopBound<WebSocketClient>]],
                            _ read: @escaping @Sendable (WebSocketClient) -> Int) -> Int {
        byLoop.reduce(0) { total, group in
            total + ((try? group[0].eventLoop.submit { group.reduce(0) { $0 + read($1.value) } }.wait()) ?? 0)
        }
    }
}
