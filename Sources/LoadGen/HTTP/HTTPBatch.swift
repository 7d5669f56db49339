import NIOConcurrencyHelpers
import NIOCore

/// Setup requests in parallel: `count` calls spread over `sessions`, each session sending
/// its share one after another.
enum HTTPBatch {
    /// Returns the answers in index order. Blocks the calling thread (never an event loop);
    /// fails with the first transport error.
    static func run(count: Int, sessions: [HTTPSession], _ make: @escaping @Sendable (Int) -> HTTPCall) throws
        -> [HTTPAnswer]
    {
        precondition(!sessions.isEmpty)
        let answers = NIOLockedValueBox([HTTPAnswer?](repeating: nil, count: count))
        let stride = sessions.count
        @Sendable func step(_ session: HTTPSession, _ index: Int) -> EventLoopFuture<Void> {
            guard index < count else { return session.loop.makeSucceededVoidFuture() }
            return session.request(make(index)).flatMap { answer in
                answers.withLockedValue { $0[index] = answer }
                return step(session, index + stride)
            }
        }
        let chains = sessions.enumerated().map { step($0.element, $0.offset) }
        try EventLoopFuture.andAllSucceed(chains, on: sessions[0].loop).wait()
        return answers.withLockedValue { $0.map { $0! } }
    }
}
